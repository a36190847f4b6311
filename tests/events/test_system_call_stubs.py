"""Genuine system-call stubs outside ntdll and win32u are not direct system calls.

Before Windows 10 (no win32u.dll) user32.dll and gdi32.dll hold the win32k stubs, and
WOW64's wow64win.dll its own: a real Windows 7 calc.exe idle in user32!NtUserGetMessage
raised "System Call Issued Outside ntdll or win32u". Here the threads' frames are built as
the walker builds them and the shipped rules run over the events the builder makes.
"""

import pytest

from callstack_forensics.engine.stack import ModuleRef
from callstack_forensics.rules import default_rules_dir, load_rules

from .helpers import EXE, SYS32, Proc, api_frames, events_of, frame, only, stack, thread, view

USER32 = 0x77A00000
WIN7_STUB = "cc" * 54 + "4c8bd1b806100000" + "0f05"  # mov r10,rcx; mov eax,0x1006; syscall
WIN10_STUB = "cc" * 44 + "4c8bd1b806100000f604250803fe7f017503" + "0f05"
OUTSIDE = "System Call Issued Outside ntdll or win32u"


def gui_thread_events(module_path: str, leading: str, symbol: str) -> list[dict]:
    proc = Proc(pid=2868, name="calc.exe", path=SYS32 + "calc.exe")
    info = thread(proc, 2872, wait_reason="WrUserRequest")
    top = frame(0, symbol, None, leading=leading, address=USER32 + 0x1A2B + 0xA)
    top.module = ModuleRef(module_path.rsplit("\\", 1)[-1], module_path, USER32)
    frames = [top, *api_frames("user32.dll!GetMessageW", "calc.exe!WinMain", "kernel32.dll!BaseThreadInitThunk",
                               "ntdll.dll!RtlUserThreadStart")]
    return events_of(view(proc, [stack(proc, info, frames)]))


def fired(events: list[dict]) -> set[str]:
    return {m.rule.name for m in load_rules(default_rules_dir()).run(events)}


@pytest.mark.parametrize("leading", [WIN7_STUB, WIN10_STUB], ids=["windows7-form", "windows10-form"])
def test_a_windows_7_user32_stub_is_a_genuine_system_call(leading):
    path = "C:\\Windows\\System32\\user32.dll"
    events = gui_thread_events(path, leading, "c:\\windows\\system32\\user32.dll+0x1a35")
    [event] = only(events, "thread", tid=2872)
    syscall = event["process"]["thread"]["Ext"]["syscall"]
    assert syscall["stub"] == "user32.dll+0x1a35" and syscall["number"] == 0x1006
    assert fired(events) == set()


def test_wow64win_stubs_count_as_windows_too():
    path = "C:\\Windows\\System32\\wow64win.dll"
    events = gui_thread_events(path, WIN7_STUB, "c:\\windows\\system32\\wow64win.dll+0x1a35")
    assert OUTSIDE not in fired(events)


def test_the_same_stub_in_a_module_from_elsewhere_is_a_direct_system_call():
    path = "C:\\Users\\Public\\user32.dll"  # the name, not the folder, of a system module
    events = gui_thread_events(path, WIN7_STUB, "c:\\users\\public\\user32.dll+0x1a35")
    [event] = only(events, "thread", tid=2872)
    assert "stub" not in event["process"]["thread"]["Ext"].get("syscall", {})
    assert OUTSIDE in fired(events)


def test_a_hand_written_syscall_in_a_system_module_is_no_genuine_stub():
    # syscall right after `mov eax, 0x1006` without `mov r10, rcx`: not Windows' stub form
    leading = "cc" * 58 + "b806100000" + "0f05"
    leading = leading[-128:]
    events = gui_thread_events("C:\\Windows\\System32\\user32.dll", leading, "c:\\windows\\system32\\user32.dll+0x1a35")
    assert OUTSIDE in fired(events)


def test_a_program_with_a_direct_syscall_still_fires():
    proc = Proc(pid=4000, name="loader.exe", path="C:\\Users\\Public\\loader.exe")
    info = thread(proc, 4004)
    top = frame(0, "c:\\users\\public\\loader.exe+0x1a3f", None, leading=WIN7_STUB, address=EXE + 0x1A3F)
    top.module = ModuleRef("loader.exe", "C:\\Users\\Public\\loader.exe", EXE)
    events = events_of(view(proc, [stack(proc, info, [top, *api_frames("kernel32.dll!BaseThreadInitThunk")])]))
    assert OUTSIDE in fired(events)
