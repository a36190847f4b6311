"""What MemProcFS sees in a memory image, as JSON: ``python -m tests.forge.memprocfs_view IMAGE``.

MemProcFS (the ``memprocfs`` wheel, a C library) runs in a child process of its own, so that a
library crash or a hang costs one image, not the test session. It runs offline: no symbol server
(``-disable-symbolserver``), kernel offsets from the info.db the wheel bundles, nothing written.
``-waitinitialize`` makes it finish its asynchronous start-up (threads are read there) before we ask.
The output is MemProcFS's own view, untouched: comparing it with a scenario is the test's job.
"""

from __future__ import annotations

import json
import sys

import memprocfs

OPTIONS = ["-disable-symbolserver", "-disable-python", "-waitinitialize"]


def view(image: str) -> dict:
    try:
        vmm = memprocfs.Vmm(["-device", image, *OPTIONS])
    except Exception as exc:  # MemProcFS says no by raising: the test names the layout and why
        return {"opened": False, "error": str(exc)}
    processes = [_process(process) for process in vmm.process_list()]
    return {"opened": True, "build": vmm.kernel.build, "processes": processes}


def _process(process) -> dict:
    threads = process.maps.thread()
    return {
        "pid": process.pid, "ppid": process.ppid, "name": process.name, "fullname": process.fullname,
        "wow64": bool(process.is_wow64),
        "threads": [{"tid": t["tid"], "rip": t["reg-rip"], "rsp": t["reg-rsp"], "exitstatus": t["exitstatus"],
                     "callstack": _callstack(process, t["tid"])} for t in threads],
        "modules": [{"name": m.name, "base": m.base, "size": m.image_size, "wow64": bool(m.is_wow64)}
                    for m in process.module_list()],
        "vads": _vads(process),
    }


def _vads(process) -> list[dict] | None:
    """The VAD map, or None where MemProcFS refuses one (it does for System and Registry)."""
    try:
        return [{"start": v["start"], "end": v["end"]} for v in process.maps.vad()]
    except RuntimeError:
        return None


def _callstack(process, tid: int) -> list[int]:
    """Return addresses, frame 0 (the thread's RIP) first; MemProcFS ends a stack with a 0 entry."""
    try:
        frames = process.maps.thread_callstack(tid)
    except Exception:  # no stack for this thread (a kernel thread): an empty list says so
        return []
    addresses = [frame["va-retaddr"] for frame in sorted(frames, key=lambda f: f["i"])]
    while addresses and addresses[-1] == 0:
        addresses.pop()
    return addresses


if __name__ == "__main__":
    json.dump(view(sys.argv[1]), sys.stdout)
