"""Check 8: user APCs queued (or running) into unbacked or RWX memory."""

from __future__ import annotations

from callstack_forensics.engine.stack import FoundBy, Frame, ModuleRef
from callstack_forensics.events.implants import apcs
from callstack_forensics.memory import ThreadInfo
from callstack_forensics.memory.implantstate import ApcState, QueuedApc

from .helpers import BODY, EXE, NTDLL, SHELLCODE, SYS32, ImplantProcess, context, export_address, image_with


def process(wow64: bool = False) -> ImplantProcess:
    proc = ImplantProcess(wow64=wow64)
    proc.map_image(NTDLL, image_with({"KiUserApcDispatcher": BODY, "RtlDispatchAPC": BODY}, "ntdll.dll"),
                   SYS32 + "ntdll.dll")
    proc.map_image(EXE, image_with({"ApcRoutine": BODY}, "powershell.exe"), SYS32 + "powershell.exe")
    proc.map_private(SHELLCODE, b"\x90" * 0x100)
    proc.map_private(0x00500000, b"\x90" * 0x100)
    return proc


def apc(routine: int, context_: int = 0, mode: str = "user") -> QueuedApc:
    return QueuedApc(0xFFFFB40A12345678, mode, routine, context_, 0x11, 0x22)


def thread_fields(proc, state: ApcState, frames=()) -> tuple[dict, list[str]]:
    return apcs.thread_fields(context(proc), ThreadInfo(8, apc_state=state), list(frames))


def test_an_apc_into_rwx_shellcode_in_an_alertable_wait():
    state = ApcState((apc(SHELLCODE + 0x10, 0x1234), apc(0xFFFFF80000001000, mode="kernel")), alertable=True,
                     wait_mode="user", user_apc_pending=True)
    fields, details = thread_fields(process(), state)
    assert fields["alertable"] is True and fields["user_apc_pending"] is True
    [entry] = fields["user_apcs"]
    assert entry["state"] == "queued" and entry["procedure"] == hex(SHELLCODE + 0x10)
    assert entry["symbol_info"] == "Unbacked" and entry["protection"] == "RWX" and entry["argument1"] == "0x1234"
    assert details == [f"user APC queued in an alertable user-mode wait: KAPC at 0xffffb40a12345678 runs Unbacked "
                       f"(RWX)"]


def test_queueuserapc_runs_the_routine_in_normalcontext_through_rtldispatchapc():
    state = ApcState((apc(export_address(NTDLL, 1), export_address(EXE, 0)),))
    [entry] = thread_fields(process(), state)[0]["user_apcs"]
    assert entry["symbol_info"] == "c:\\windows\\system32\\powershell.exe!ApcRoutine"
    assert entry["dispatcher"] == "c:\\windows\\system32\\ntdll.dll!RtlDispatchAPC"
    assert entry["normal_routine"] == hex(export_address(NTDLL, 1))


def test_a_wow64_routine_is_stored_encoded_and_decoded_back():
    encoded = (-(0x00500010 << 2)) & ((1 << 64) - 1)
    assert apcs.wow64_decode(encoded) == 0x00500010
    [entry] = thread_fields(process(wow64=True), ApcState((apc(encoded),)))[0]["user_apcs"]
    assert entry["procedure"] == "0x500010" and entry["wow64_encoded"] is True and entry["protection"] == "RWX"


def test_no_apc_state_or_an_empty_queue_gives_no_fields():
    proc = process()
    assert apcs.thread_fields(context(proc), ThreadInfo(8), []) == ({}, [])
    assert thread_fields(proc, ApcState(alertable=True, wait_mode="user", user_apc_pending=False)) == ({}, [])


def _frame(index: int, symbol: str, module: str | None, address: int, protection: str = "R-X") -> Frame:
    ref = ModuleRef(module, SYS32 + module, NTDLL) if module else None
    return Frame(index, address, FoundBy.UNWOUND, symbol, ref, "image" if module else "private", protection)


def test_a_thread_running_an_apc_in_unbacked_memory_shows_it_in_its_stack():
    frames = [_frame(0, "c:\\windows\\system32\\ntdll.dll!NtDelayExecution+0x14", "ntdll.dll", NTDLL + 0x1014),
              _frame(1, "c:\\windows\\system32\\kernelbase.dll!SleepEx+0x9e", "kernelbase.dll", NTDLL + 0x2000),
              _frame(2, "Unbacked", None, SHELLCODE + 0x30, "RWX"),
              _frame(3, "c:\\windows\\system32\\ntdll.dll!KiUserApcDispatcher+0x2e", "ntdll.dll", NTDLL + 0x3000)]
    fields, details = apcs.thread_fields(context(process()), ThreadInfo(8), frames)
    [entry] = fields["user_apcs"]
    assert entry == {"state": "running", "address": hex(SHELLCODE + 0x30), "symbol_info": "Unbacked",
                     "module": "Unbacked", "protection": "RWX", "region_type": "private", "frame": 2}
    assert details == ["running a user APC: Unbacked below ntdll!KiUserApcDispatcher"]
    assert apcs.running_apc(frames[:3]) is None
