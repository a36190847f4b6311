"""The engine against LLDB, the second reference: our frames must equal LLDB's wherever LLDB produces them.

LLDB's backtrace of each captured dump (tests/wine/lldb_reference.py) is
compared frame by frame with ours and with the reference. Where LLDB stops
short, tests/wine/lldb_compare.py names why; every such place is listed here,
by thread, kind and frame, with the reason in words: a new one, or one that
goes away, fails until this table says so. Nothing is skipped silently.
"""

from __future__ import annotations

import pytest

from callstack_forensics.memory.minidump import MinidumpMemory

from .build import BIN, PROGRAMS
from .lldb_compare import Kind
from .pdata import PdataFile

pytestmark = pytest.mark.wine

# (program, role) -> (kind, reference frame the reason is about, why). Frame numbers are the
# reference's; LLDB's frames before the exception are compared, the ones after are not.
LLDB_EXCEPTIONS = {
    ("nounwind", "prolog_spin"): (
        Kind.FUNCTION_START, 0,
        "frame 0 spins inside prolog_spin's prolog; the hand-written function has no symbol or DWARF function "
        "LLDB knows, so LLDB reads the last .pdata row as if `sub rsp,0x20` had run and takes garbage for frame 1",
    ),
    ("nounwind", "nounwind_sleeper"): (
        Kind.MISALIGNED_CFA, 1,
        "nounwind_sleeper calls Sleep with RSP = 8 (mod 16); Sleep's CFA is right but misaligned and LLDB's "
        "Windows x64 check refuses it, dropping Sleep and its caller",
    ),
    ("rwx_syscall", "rwx_syscall_4c8bd1"): (Kind.NO_UNWIND_DATA, 0, "frame 0 is the syscall stub in private memory"),
    ("rwx_syscall", "rwx_syscall_4989ca"): (Kind.NO_UNWIND_DATA, 0, "frame 0 is the syscall stub in private memory"),
    ("shellcode", "shellcode_rwx"): (Kind.NO_UNWIND_DATA, 2, "frame 2 is the shellcode in private RWX memory"),
    ("shellcode", "shellcode_rx"): (Kind.NO_UNWIND_DATA, 2, "frame 2 is the shellcode in private R-X memory"),
    ("sleepmask", "sleeper_rw"): (
        Kind.NO_UNWIND_DATA, 2, "frame 2 is the sleep routine in private memory, made PAGE_READWRITE while it sleeps",
    ),
    ("implants", "apc_running"): (
        Kind.NO_UNWIND_DATA, 0,
        "frame 0, Wine's NtDelayExecution stub, has no .pdata entry: LLDB takes its caller from the interrupted "
        "SleepEx below the APC dispatcher and never shows the APC's frames (Sleep, the RWX routine, the dispatch)",
    ),
    ("callback", "wndproc_wait"): (
        Kind.WINEDBG_STOPS, 8,
        "KiUserCallbackDispatcher's return slot holds Wine's 0xdeadbabe; the outer frames come from the program",
    ),
    ("callback", "modal_dialog"): (
        Kind.HOT_PATCH, 1,
        "user32!GetMessageW+0x11 (hot-patched): LLDB starts the function at the DWARF start, 8 bytes in, and "
        "misses `sub rsp,0x28` at prolog offset 0xc",
    ),
    ("msgloop", "messagebox"): (Kind.HOT_PATCH, 1, "user32!GetMessageW+0x11, as above"),
    ("msgloop", "dialogbox"): (Kind.HOT_PATCH, 1, "user32!GetMessageW+0x11, as above"),
    ("alertable", "apc_running"): (
        Kind.MISALIGNED_CFA, 6,
        "KiUserApcDispatcher's caller is the interrupted SleepEx syscall (RSP = 8 mod 16): its CFA is right but "
        "misaligned",
    ),
}


def _threads(lldb_comparisons, program):
    return lldb_comparisons[program]


@pytest.mark.parametrize("program", [p.name for p in PROGRAMS])
def test_every_lldb_stop_has_a_named_reason(lldb_comparisons, program):
    for cmp in _threads(lldb_comparisons, program):
        assert cmp.lldb.unexplained is None, f"{program}/{cmp.truth.role}: {cmp.lldb.unexplained}"


@pytest.mark.parametrize("program", [p.name for p in PROGRAMS])
def test_ours_equal_lldb_where_lldb_unwinds(lldb_comparisons, program):
    for cmp in _threads(lldb_comparisons, program):
        compared = cmp.lldb.compared
        if cmp.defect is not None:  # a known engine defect: held to its entry by test_oracle
            compared = compared[: cmp.defect.first_wrong_frame]
        ours = [hex(f.address) for f in cmp.ours[: len(compared)]]
        assert ours == [hex(f.pc) for f in compared], f"{program}/{cmp.truth.role} (tid {cmp.truth.tid})"


@pytest.mark.parametrize("program", [p.name for p in PROGRAMS])
def test_lldb_exceptions_are_exactly_the_listed_ones(lldb_comparisons, program):
    found = {
        (program, c.truth.role): (c.lldb.exception.kind, c.lldb.exception.frame)
        for c in _threads(lldb_comparisons, program)
        if c.lldb.exception is not None
    }
    listed = {key: value[:2] for key, value in LLDB_EXCEPTIONS.items() if key[0] == program}
    assert found == listed


@pytest.mark.parametrize("program", [p.name for p in PROGRAMS])
def test_lldb_is_complete_on_every_other_thread(lldb_comparisons, program):
    for cmp in _threads(lldb_comparisons, program):
        if (program, cmp.truth.role) not in LLDB_EXCEPTIONS:
            assert cmp.lldb.complete, f"{program}/{cmp.truth.role}: LLDB reaches {cmp.lldb.reach}/{cmp.total}"


def test_pdata_reader_on_a_hand_written_prolog(captures):
    """prolog_spin: push rbx (ends at 1), then the spin loop, then sub rsp,0x20 (ends at 9); leaf_spin: no entry."""
    info = {t["role"]: t for t in captures["nounwind"].ready["threads"]}
    with MinidumpMemory(captures["nounwind"].dump) as dump:
        image = next(m.base for m in dump.modules() if m.name.lower() == "nounwind.exe")
    pdata = PdataFile.open(BIN / "nounwind.exe")
    loop = int(info["prolog_spin"]["rip_range"][0], 16) - image
    entry = pdata.function_at(loop)
    assert entry is not None and entry.begin == loop - 1
    assert sorted(entry.code_offsets) == [1, 9]
    assert pdata.function_at(int(info["leaf_spin"]["rip_range"][0], 16) - image) is None
