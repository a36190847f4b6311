"""The MemProcFS side of ``make bench``: ``python -m tests.bench_memprocfs IMAGE`` opens the image
offline and reads every call stack of every thread, as ``callstacks.detect`` does, and prints
``{"threads": N, "frames": M}``.

Why a script of its own: the bench times whole child processes (wall, CPU and peak RSS through
``bench_launch.py``), and MemProcFS is a C library, so its run must be a process that does only
that (the options and the stack reading are the forge test's, ``tests/forge/memprocfs_view.py``;
modules and VADs, which that test also lists, are left out here: a stack walk does not need them).
"""

from __future__ import annotations

import json
import sys

import memprocfs

from .forge.memprocfs_view import OPTIONS, _callstack


def all_stacks(image: str) -> dict[str, int]:
    vmm = memprocfs.Vmm(["-device", image, *OPTIONS])
    threads = frames = 0
    for process in vmm.process_list():
        for thread in process.maps.thread():
            threads += 1
            frames += len(_callstack(process, thread["tid"]))
    vmm.close()
    return {"threads": threads, "frames": frames}


if __name__ == "__main__":
    json.dump(all_stacks(sys.argv[1]), sys.stdout)
