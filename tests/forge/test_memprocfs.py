"""An independent reader takes the forged images for real: MemProcFS reads them and sees the scenario.

MemProcFS (Ulf Frisk's engine; PyPI ``memprocfs``, pinned in the test extra) was written with no
thought of this forge. Every scenario is forged on the default layout, and the benign desktop on
every layout of ../shared/isf; each image is opened unmodified, offline (info.db, no symbol
server), and what MemProcFS sees is compared with the forge's plan of the scenario: processes
(pid, parent, name), threads per process, modules per process (64-bit and WOW64's 32-bit), VADs,
each thread's user RIP/RSP, and, where MemProcFS builds a call stack (image-backed x64 code with
unwind data), every return address. Where it cannot, the reason is named and what it does see
is still checked (a prefix of ours). Layouts MemProcFS cannot know offline, or knows only in part,
are named with why, and the part it does read is checked.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pefile
import pytest

from callstack_forensics.forge import ForgeResult, forge
from callstack_forensics.forge.default_layout import default_isf_path
from callstack_forensics.forge.modules import Catalog
from callstack_forensics.forge.plan import ProcessPlan, ThreadPlan

from .conftest import REPO, real_isfs

SCENARIOS = sorted((REPO / "samples" / "scenarios").glob("*.toml"))
BENIGN = REPO / "samples" / "scenarios" / "benign_desktop.toml"
# Layouts MemProcFS 5.19 cannot read offline, and why (checked: opening them must still fail).
UNKNOWN_OFFLINE = {
    "C78AB9DB": "Windows 8.1 (9600): not in MemProcFS 5.19's info.db, and its fallback without symbols finds "
                "_EPROCESS.VadRoot as the kernel pointer 4 bytes after ExitStatus, which on this build it is not "
                "(ExitStatus 0x6fc, VadRoot 0x5d8), so it refuses the process list ('Unable to walk EPROCESS')",
}
# Layouts it reads only in part offline, and why (checked: the part it reads, and that the rest stays unread).
THREADS_UNREAD_OFFLINE = {
    "339E7413": "Windows 7 SP1 (7601): not in MemProcFS 5.19's info.db; processes, modules and VADs are found "
                "without symbols, but threads are read only through kernel symbols, which it has not offline",
}


@dataclass
class Seen:
    """One forged image and MemProcFS's view of it."""

    result: ForgeResult
    view: dict
    kernel_base: int

    def process(self, pid: int) -> dict:
        return next(p for p in self.view["processes"] if p["pid"] == pid)


def _read(image: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "tests.forge.memprocfs_view", str(image)], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, f"MemProcFS crashed on {image}:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def images():
    folder = Path(tempfile.mkdtemp(prefix="forge-memprocfs-"))
    cache: dict[tuple[str, str | None], Seen] = {}

    def get(scenario: Path, isf: Path | None = None) -> Seen:
        key = (scenario.stem, isf.name if isf else None)
        if key not in cache:
            tag = isf.name[:8] if isf else "default"
            result = forge(scenario, folder / tag / f"{scenario.stem}.raw", isf)
            cache[key] = Seen(result, _read(result.image), result.machine.kernel_base)
            result.image.unlink()
            result.machine = None  # 38 images stay cached: keep the plans, drop the memory
        return cache[key]

    yield get
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def unwound() -> UnwindIndex:
    return UnwindIndex()


def _layouts() -> list:
    params = [pytest.param(None, id="default")]
    for isf in real_isfs():
        if isf.name != default_isf_path().name:
            params.append(pytest.param(isf, id=isf.name[:8]))
    return params


# ---- what MemProcFS must see -------------------------------------------------------------------


def check_processes(seen: Seen) -> None:
    assert seen.view["opened"], seen.view.get("error")
    theirs = {p["pid"]: p for p in seen.view["processes"]}
    ours = {p.pid: p for p in seen.result.plans}
    assert sorted(theirs) == sorted(ours)
    for pid, plan in ours.items():
        assert theirs[pid]["ppid"] == plan.ppid, pid
        assert _name_matches(theirs[pid], plan), (pid, theirs[pid]["name"], theirs[pid]["fullname"], plan.name)


def _name_matches(theirs: dict, plan: ProcessPlan) -> bool:
    """MemProcFS's short name is _EPROCESS.ImageFileName (14 characters); its full name, the image's."""
    return theirs["name"] == plan.name[:14] and theirs["fullname"].lower() == plan.name.lower()


def check_threads(seen: Seen) -> None:
    for plan in seen.result.plans:
        theirs = {t["tid"]: t for t in seen.process(plan.pid)["threads"]}
        assert sorted(theirs) == sorted(t.tid for t in plan.threads), plan.pid
        for thread in plan.threads:
            assert theirs[thread.tid]["exitstatus"] == 0x103, (plan.pid, thread.tid)
            if thread.context is not None:
                expected = (thread.context.rip, thread.context.rsp) if _rsp_on_a_stack(thread) else (0, 0)
                assert (theirs[thread.tid]["rip"], theirs[thread.tid]["rsp"]) == expected, (plan.pid, thread.tid)


def _rsp_on_a_stack(thread: ThreadPlan) -> bool:
    """MemProcFS keeps a trap frame's RIP/RSP only when RSP lies within the TEB's user stack (or the
    kernel stack), and zeroes both otherwise (vmmwinthread.c); a pivoted stack is shown as (0, 0)."""
    return thread.stack_limit < thread.context.rsp < thread.stack_base


def check_modules(seen: Seen) -> None:
    for plan in seen.result.plans:
        theirs = seen.process(plan.pid)["modules"]
        if plan.kernel_only:  # the kernel's processes show the loaded drivers: the kernel and the HAL
            kernel = seen.kernel_base
            expected = {(kernel, seen.result.assembly.globals.image.size, "ntoskrnl.exe"),
                        (kernel - 0x800000, 0x67000, "hal.dll")}
            assert {(m["base"], m["size"], m["name"].lower()) for m in theirs} == expected, plan.pid
            continue
        user = [m for m in theirs if m["base"] < 0xFFFF800000000000]  # csrss is also shown the kernel's drivers
        bases32 = {m.base for m in plan.modules32}
        for wow64, ours in ((False, [m for m in plan.modules if m.base not in bases32]), (True, plan.modules32)):
            listed = {(m["base"], _size(m), _module_name(m)) for m in user if m["wow64"] == wow64}
            expected = {(m.base, m.size, m.path.rsplit("\\", 1)[-1].lower()) for m in ours if m.linked}
            assert expected <= listed, (plan.pid, wow64, sorted(expected - listed))
            hidden = {(m.base, m.size) for m in ours if not m.linked}
            assert {(b, s) for b, s, _ in listed} <= {(b, s) for b, s, _ in expected} | hidden, (plan.pid, wow64)


def _size(module: dict) -> int:
    """MemProcFS 5.19 reports a WOW64 module's size with a stray high dword (0x1_0000_8000 for 0x8000)."""
    return module["size"] & 0xFFFFFFFF if module["wow64"] else module["size"]


def _module_name(module: dict) -> str:
    """MemProcFS names the 64-bit ntdll of a WOW64 process ``_64-ntdll.dll`` beside the 32-bit one."""
    return module["name"].lower().removeprefix("_64-")


def check_vads(seen: Seen) -> None:
    for plan in seen.result.plans:
        vads = seen.process(plan.pid)["vads"]
        if vads is None:  # MemProcFS's API gives no VAD map of the kernel's own processes
            assert plan.kernel_only, plan.pid
            continue
        theirs = sorted((v["start"], v["end"]) for v in vads)
        assert theirs == sorted((v.start, v.end) for v in plan.vads), plan.pid


# ---- call stacks -------------------------------------------------------------------------------


COMPARED = "compared address by address"
WOW64 = "WOW64: the 64-bit half compared address by address; MemProcFS builds no 32-bit frames"


PIVOTED = "RSP outside the TEB's stack (a pivot): MemProcFS zeroes RIP/RSP and builds no stack"


def beyond_memprocfs(plan: ProcessPlan, thread: ThreadPlan, unwound: "UnwindIndex") -> str | None:
    """Why MemProcFS cannot rebuild all of this thread's (64-bit) stack, or None if it can."""
    if thread.context is None:
        return "kernel thread: no user-mode stack"
    if not _rsp_on_a_stack(thread):
        return PIVOTED
    if any(not unwound.covers(plan, address) for address in thread.return_addresses):
        return NO_UNWIND
    return None


NO_UNWIND = ("a frame in code without unwind data (unbacked memory, or a leaf with no .pdata entry, which the "
             "x64 ABI unwinds by popping the return address): MemProcFS stops or guesses there")


class UnwindIndex:
    """Which addresses of a process's 64-bit modules a RUNTIME_FUNCTION covers, read from the
    catalog's module files with pefile (independently of the forge's own unwind tables)."""

    def __init__(self) -> None:
        self.catalog = Catalog.load()
        self.ranges: dict[str, list[tuple[int, int]]] = {}

    def covers(self, plan: ProcessPlan, address: int) -> bool:
        for module in plan.modules:
            if module.bits == 64 and module.base <= address < module.base + module.size:
                rva = address - module.base
                return any(lo <= rva < hi for lo, hi in self._functions(module.path))
        return False

    def _functions(self, path: str) -> list[tuple[int, int]]:
        name = path.rsplit("\\", 1)[-1].lower()
        if name not in self.ranges:
            pe = pefile.PE(str(self.catalog.get(name).file), fast_load=True)
            pe.parse_data_directories([pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_EXCEPTION"]])
            self.ranges[name] = [(f.struct.BeginAddress, f.struct.EndAddress)
                                 for f in getattr(pe, "DIRECTORY_ENTRY_EXCEPTION", [])]
        return self.ranges[name]


def check_callstacks(seen: Seen, unwound: UnwindIndex) -> dict[str, int]:
    """Compared threads must match address by address; the others, up to where MemProcFS stops."""
    counts: dict[str, int] = {}
    for plan in seen.result.plans:
        theirs = {t["tid"]: t["callstack"] for t in seen.process(plan.pid)["threads"]}
        for thread in plan.threads:
            reason = beyond_memprocfs(plan, thread, unwound)
            stack, ours = theirs[thread.tid], thread.return_addresses
            if reason is None:
                assert stack == ours, (plan.pid, thread.tid, [hex(a) for a in stack], [hex(a) for a in ours])
                reason = WOW64 if thread.wow64 is not None else COMPARED
            elif reason == PIVOTED:
                assert stack == [], (plan.pid, thread.tid, [hex(a) for a in stack])
            elif thread.context is not None:
                assert _stops_without_unwind_data(stack, ours, plan, unwound), \
                    (plan.pid, thread.tid, reason, [hex(a) for a in stack], [hex(a) for a in ours])
            counts[reason] = counts.get(reason, 0) + 1
    return counts


def _stops_without_unwind_data(stack: list[int], ours: list[int], plan: ProcessPlan, unwound: UnwindIndex) -> bool:
    """MemProcFS agrees with ours frame by frame up to and including the first frame no
    RUNTIME_FUNCTION covers (it cannot unwind past it), then stops or guesses; when frame 0
    itself lies outside any image it builds no stack at all."""
    first = next(i for i, a in enumerate(ours) if not unwound.covers(plan, a))
    images = [(m.base, m.base + m.size) for m in plan.modules]
    if not stack:
        return first == 0 and not any(lo <= ours[0] < hi for lo, hi in images)
    agreed = min(len(stack), first + 1)
    return stack[:agreed] == ours[:agreed]


# ---- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.stem)
def test_memprocfs_reads_every_scenario_on_the_default_layout(images, unwound, scenario: Path):
    seen = images(scenario)
    check_processes(seen)
    check_threads(seen)
    check_modules(seen)
    check_vads(seen)
    counts = check_callstacks(seen, unwound)
    assert counts.get(COMPARED, 0) > 0, counts
    print(f"{scenario.stem}: call stacks {counts}")


@pytest.mark.parametrize("isf", _layouts())
def test_memprocfs_reads_the_benign_desktop_on_every_layout_it_knows(images, unwound, isf: Path | None):
    seen = images(BENIGN, isf)
    tag = isf.name[:8] if isf else "default"
    if tag in UNKNOWN_OFFLINE:
        assert not seen.view["opened"], f"MemProcFS now reads {tag}: compare it like the others"
        print(f"{tag}: {UNKNOWN_OFFLINE[tag]}")
        return
    check_processes(seen)
    if tag in THREADS_UNREAD_OFFLINE:
        check_modules(seen)
        check_vads(seen)
        assert not any(p["threads"] for p in seen.view["processes"]), f"MemProcFS now reads {tag}'s threads"
        print(f"{tag}: {THREADS_UNREAD_OFFLINE[tag]}")
        return
    check_threads(seen)
    check_modules(seen)
    check_vads(seen)
    counts = check_callstacks(seen, unwound)
    assert counts.get(COMPARED, 0) > 100, counts
    print(f"{tag}: call stacks {counts}")
