"""The engine against Wine's ground truth: every captured thread, frame by frame, by address.

The reference is winedbg's backtrace, completed by the programs' own report
where winedbg cannot unwind (tests/wine/truth.py). A thread listed in
tests/wine/known_defects.py must go wrong exactly where its entry says (and a
fixed one fails until its entry is removed); every other thread must be exact.
The RWX programs are also checked field by field: a direct system call from
private RWX memory must show as an Unbacked RWX frame 0 ending in ``0f05``, and
shellcode as an Unbacked frame exactly at its return site, followed by its
image-backed caller. The states the newer programs park threads in are checked
to be real (the reference holds the dispatcher, the callback, the modal loop),
so that no program is quietly reduced to a plain wait.
"""

from __future__ import annotations

import pytest

from .build import PROGRAMS
from .known_defects import KNOWN_DEFECTS
from .oracle import ThreadComparison, load_walker

pytestmark = pytest.mark.wine

WALK, WHY = load_walker()
# Collected always; expected to fail only while the engine's walker cannot be imported.
needs_walker = pytest.mark.xfail(WALK is None, reason="walker not yet landed", strict=False)


def _thread(comparisons, program: str, role: str) -> ThreadComparison:
    return next(c for c in comparisons[program] if c.truth.role == role)


def _self(captures, program: str, role: str) -> dict:
    return next(t for t in captures[program].ready["threads"] if t["role"] == role)


@needs_walker
@pytest.mark.parametrize("program", [p.name for p in PROGRAMS])
def test_frames_equal_the_reference(comparisons, program):
    for cmp in comparisons[program]:
        assert not cmp.truth.conflicts, f"the reference itself is inconsistent: {cmp.truth.conflicts}"
        where = f"{program} tid {cmp.truth.tid} ({cmp.truth.role})"
        if cmp.defect is not None:
            assert cmp.defect_change is None, f"{where}: known defect {cmp.defect.issue}: {cmp.defect_change}"
            continue
        ours = [hex(f.address) for f in cmp.ours]
        reference = [hex(f.address) for f in cmp.truth.frames]
        assert ours == reference, f"{where}; stop: {cmp.stop}, {cmp.note}"


@needs_walker
def test_every_known_defect_names_a_captured_thread(comparisons):
    roles = {(program, c.truth.role) for program, threads in comparisons.items() for c in threads}
    for defect in KNOWN_DEFECTS:
        assert (defect.program, defect.role) in roles, f"no captured thread for {defect}"


@needs_walker
@pytest.mark.parametrize("role,encoding", [("rwx_syscall_4c8bd1", "4c8bd1"), ("rwx_syscall_4989ca", "4989ca")])
def test_direct_syscall_from_rwx_memory(comparisons, captures, role, encoding):
    info = _self(captures, "rwx_syscall", role)
    frame = _thread(comparisons, "rwx_syscall", role).ours[0]
    assert frame.address == int(info["stub"], 16) + 10
    assert (frame.region_kind, frame.protection) == ("private", "RWX")
    assert frame.symbol_info.startswith("Unbacked")
    assert frame.module is None
    assert frame.call_verified is None
    assert len(frame.callsite_leading_bytes) == 128
    assert frame.callsite_leading_bytes.endswith(f"{encoding}b8230000000f05")


@needs_walker
@pytest.mark.parametrize("role,protection", [("shellcode_rwx", "RWX"), ("shellcode_rx", "R-X")])
def test_shellcode_frame_mid_stack(comparisons, captures, role, protection):
    info = _self(captures, "shellcode", role)
    cmp = _thread(comparisons, "shellcode", role)
    return_site = int(info["expect"][0]["address"], 16)
    caller = int(info["expect"][1]["address"], 16)
    index = next(i for i, f in enumerate(cmp.ours) if f.address == return_site)
    frame = cmp.ours[index]
    assert index >= 2, "below the shellcode: ntdll's syscall stub and kernelbase!Sleep"
    assert (frame.region_kind, frame.protection) == ("private", protection)
    assert frame.symbol_info.startswith("Unbacked") and frame.module is None
    assert frame.call_verified is True
    assert frame.callsite_leading_bytes.endswith("ffd3"), "call rbx ends right at the return site"
    assert cmp.ours[index + 1].address == caller
    assert cmp.ours[index + 1].module is not None


@needs_walker
def test_spinning_threads_frame0_in_place(comparisons, captures):
    for role in ("leaf_spin", "prolog_spin"):
        low, high = (int(a, 16) for a in _self(captures, "nounwind", role)["rip_range"])
        assert low <= _thread(comparisons, "nounwind", role).ours[0].address < high


@needs_walker
def test_every_thread_ends_at_the_start_of_the_stack(comparisons):
    for program, threads in comparisons.items():
        for cmp in threads:
            assert cmp.stop == "end of stack", f"{program} tid {cmp.truth.tid}: {cmp.stop} {cmp.note}"
            assert cmp.note is None, f"{program} tid {cmp.truth.tid}: {cmp.note}"


# Names the reference must hold for each state, in order, from winedbg's part of it (frames the
# programs report themselves are labelled by kind): the program really reached the state, e.g.
# the dispatcher and the callback are on the stack.
STATES = {
    ("callback", "wndproc_wait"): ["WaitForSingleObject", "wait_proc", "call_window_proc",
                                   "KiUserCallbackDispatcher"],
    ("callback", "modal_dialog"): ["GetMessageW", "DIALOG_DoDialogBox", "DialogBoxIndirectParamA", "modal_proc",
                                   "call_window_proc", "KiUserCallbackDispatcher"],
    ("callback", "send_wndproc"): ["SendMessageA", "sender_main"],
    ("msgloop", "getmessage"): ["GetMessageA", "getmessage_main"],
    ("msgloop", "messagebox"): ["GetMessageW", "DIALOG_DoDialogBox", "MessageBoxA", "messagebox_main"],
    ("msgloop", "dialogbox"): ["GetMessageW", "DIALOG_DoDialogBox", "DialogBoxIndirectParamA", "dialogbox_main"],
    ("msgloop", "msgwait"): ["in win32u", "msgwait_main"],  # user32's MsgWaitForMultipleObjectsEx tail-calls
    ("alertable", "sleepex_alertable"): ["SleepEx", "sleep_alertable"],
    ("alertable", "wfso_ex_alertable"): ["WaitForSingleObjectEx", "wfso_ex_main"],
    ("alertable", "wfmo_ex_alertable"): ["WaitForMultipleObjectsEx", "wfmo_ex_main"],
    ("alertable", "apc_running"): ["blocking_apc", "call_user_apc", "dispatch_apc", "outer"],
    ("threadpool", "tp_work"): ["park", "work_cb", "tp_object_execute", "threadpool_worker_proc"],
    ("threadpool", "tp_simple"): ["park", "simple_cb", "tp_object_execute", "threadpool_worker_proc"],
    ("threadpool", "tp_timer"): ["park", "timer_cb", "tp_object_execute", "threadpool_worker_proc"],
    ("threadpool", "tp_wait"): ["park", "wait_cb", "tp_object_execute", "threadpool_worker_proc"],
    ("threadpool", "queue_work_item"): ["park", "work_item_cb", "process_rtl_work_item", "threadpool_worker_proc"],
    ("threadpool", "timer_queue"): ["park", "timer_queue_cb", "timer_callback_wrapper", "threadpool_worker_proc"],
    ("threadpool", "idle_worker"): ["RtlSleepConditionVariableCS", "threadpool_worker_proc"],
    ("exceptions", "veh_access_violation"): ["park", "vectored_handler", "call_vectored_handlers",
                                             "dispatch_exception", "write_null", "captured"],
    ("exceptions", "veh_raise"): ["park", "vectored_handler", "call_vectored_handlers", "RaiseException",
                                  "raise_exception", "captured"],
    ("exceptions", "seh_handler"): ["park", "seh_blocking_handler", "RaiseException", "captured"],
    ("exceptions", "unhandled_filter"): ["park", "top_level_filter", "UnhandledExceptionFilter", "RaiseException",
                                         "raise_exception", "captured"],
}


@needs_walker
@pytest.mark.parametrize("program,role", sorted(STATES))
def test_the_state_is_real(comparisons, program, role):
    labels = " / ".join(f.label for f in _thread(comparisons, program, role).truth.frames)
    position = 0
    for name in STATES[program, role]:
        found = labels.find(name, position)
        assert found >= 0, f"{program}/{role}: {name} not in the reference after position {position}: {labels}"
        position = found + len(name)


@needs_walker
@pytest.mark.parametrize("role,functions,levels", [("self_recursion", ("recurse+",), 101),
                                                   ("mutual_recursion", ("ping+", "pong+"), 81)])
def test_recursion_keeps_every_level(comparisons, role, functions, levels):
    """Every level is a frame of the reference, even where one return address repeats (truth.py's folding)."""
    cmp = _thread(comparisons, "recursion", role)
    recursive = [f for f in cmp.truth.frames if f.label.startswith(functions)]
    assert len(recursive) == levels, f"{role}: {len(recursive)} recursive frames in the reference"


@needs_walker
def test_frame_after_the_exception_dispatcher_is_the_faulting_instruction(comparisons, captures):
    info = _self(captures, "exceptions", "veh_access_violation")
    cmp = _thread(comparisons, "exceptions", "veh_access_violation")
    index = next(i for i, f in enumerate(cmp.ours) if "KiUserExceptionDispatcher" in f.symbol_info)
    assert cmp.ours[index + 1].address == int(info["fault_rip"], 16)
