"""Frame layers as Elastic colours stacks: thread start at the bottom, the API layer at the top,
the program in between; unbacked and RWX are flags on top of any layer."""

from __future__ import annotations

import pytest

from callstack_forensics.report.layers import Layer, classify_stack, is_writable_executable

from .builders import frame, frames

START, PROGRAM, WIN32, NATIVE = Layer.THREAD_START, Layer.PROGRAM, Layer.WIN32_API, Layer.NATIVE_API


def layers(stack) -> list[Layer]:
    return [c.layer for c in classify_stack(stack)]


def test_console_wait_reads_api_program_thread_start():
    stack = frames("ntdll.dll!NtWaitForSingleObject+0xa", "kernelbase.dll!WaitForSingleObjectEx+0x25",
                   "smss.exe!wmain+0x1f", "smss.exe!wmainCRTStartup+0x10",
                   "kernel32.dll!BaseThreadInitThunk+0xc", "ntdll.dll!RtlUserThreadStart+0x1e")
    assert layers(stack) == [NATIVE, WIN32, PROGRAM, PROGRAM, START, START]


def test_api_modules_below_the_program_are_program_code():
    """The seed's notepad picture: user32 in the middle of a GUI stack is the program's doing."""
    stack = frames("win32u.dll!NtUserGetMessage+0xa", "user32.dll!GetMessageW+0xe", "notepad.exe!MessageLoop+0x31",
                   "user32.dll!DispatchMessageW+0x40", "notepad.exe!wWinMain+0x1b",
                   "kernel32.dll!BaseThreadInitThunk+0xc", "ntdll.dll!RtlUserThreadStart+0x1e")
    assert layers(stack) == [NATIVE, WIN32, PROGRAM, PROGRAM, PROGRAM, START, START]


def test_service_modules_beside_the_api_are_program_code():
    """regsvc.dll is what explains a Remote Registry write: it must not be coloured as the API."""
    stack = frames("ntdll.dll!NtSetValueKey+0x14", "kernelbase.dll!RegSetValueExW+0x20", "regsvc.dll!BaseRegSetValue+0x80",
                   "rpcrt4.dll!NdrServerCall2+0x10", "ntdll.dll!TppWorkerThread+0x57",
                   "kernel32.dll!BaseThreadInitThunk+0xc", "ntdll.dll!RtlUserThreadStart+0x1e")
    assert layers(stack) == [NATIVE, WIN32, PROGRAM, PROGRAM, PROGRAM, START, START]


def test_unbacked_frame_ends_the_api_run_and_is_flagged():
    stack = [frame(0, "ntdll.dll!NtCreateUserProcess+0xa"), frame(1, "kernelbase.dll!CreateProcessInternalW+0xc6"),
             frame(2, "Unbacked", protection="RWX"), frame(3, "ntdll.dll!NtDelayExecution+0x14"),
             frame(4, "kernel32.dll!BaseThreadInitThunk+0xc"), frame(5, "ntdll.dll!RtlUserThreadStart+0x1e")]
    classes = classify_stack(stack)
    assert [c.layer for c in classes] == [NATIVE, WIN32, PROGRAM, PROGRAM, START, START]
    assert [(c.unbacked, c.rwx) for c in classes][2] == (True, True)
    assert not any(c.unbacked or c.rwx for i, c in enumerate(classes) if i != 2)


def test_shellcode_at_the_top_is_program_even_above_ntdll():
    stack = [frame(0, "Unbacked", protection="RWX"), frame(1, "ntdll.dll!RtlUserThreadStart+0x1e")]
    assert layers(stack) == [PROGRAM, START]


def test_rogue_thread_start_outside_system32_is_program_code():
    """LdrpKernel32 override: a DLL exporting BaseThreadInitThunk is not the OS's thread start."""
    stack = [frame(0, "ntdll.dll!NtMapViewOfSection+0x14"), frame(1, "ntdll.dll!LdrLoadDll+0x90"),
             frame(2, "k32hook.dll!BaseThreadInitThunk+0x10", path="c:\\users\\public\\k32hook.dll"),
             frame(3, "ntdll.dll!RtlUserThreadStart+0x1e")]
    assert layers(stack) == [NATIVE, NATIVE, PROGRAM, START]


def test_api_module_loaded_from_outside_windows_is_not_the_api():
    stack = [frame(0, "kernel32.dll!Sleep+0x10", path="c:\\users\\public\\kernel32.dll"),
             frame(1, "kernel32.dll!BaseThreadInitThunk+0xc", path="c:\\windows\\temp\\kernel32.dll")]
    assert layers(stack) == [PROGRAM, PROGRAM]


def test_wow64_decorated_names_and_device_paths():
    stack = [frame(0, "ntdll.dll!NtWaitForSingleObject+0x14"), frame(1, "wow64.dll!Wow64SystemServiceEx+0x150"),
             frame(2, "wow64cpu.dll!BTCpuSimulate+0x9"),
             frame(3, "kernelbase.dll!_WaitForSingleObjectEx@12+0x90", path="c:\\windows\\syswow64\\kernelbase.dll"),
             frame(4, "app.exe!_main+0x20", path="c:\\app\\app.exe"),
             frame(5, "kernel32.dll!@BaseThreadInitThunk@12+0x19",
                   path="\\device\\harddiskvolume3\\windows\\syswow64\\kernel32.dll"),
             frame(6, "ntdll.dll!__RtlUserThreadStart@8+0x2f", path="c:\\windows\\syswow64\\ntdll.dll")]
    assert layers(stack) == [NATIVE, NATIVE, NATIVE, WIN32, PROGRAM, START, START]


def test_a_stack_of_only_thread_start_frames_and_an_empty_stack():
    assert layers(frames("ntdll.dll!RtlUserThreadStart+0x21")) == [START]
    assert layers(frames("ntdll.dll!NtTestAlert+0x14", "ntdll.dll!RtlUserThreadStart+0x21")) == [NATIVE, START]
    assert classify_stack([]) == []


def test_thread_start_function_must_be_in_its_own_module():
    """RtlUserThreadStart in kernel32 (or an export-less ntdll offset) is not the thread start."""
    stack = frames("ntdll.dll!NtWaitForSingleObject+0xa", "kernel32.dll!RtlUserThreadStart+0x10", "ntdll.dll+0x164a")
    assert layers(stack) == [NATIVE, WIN32, NATIVE]


@pytest.mark.parametrize("protection, expected", [
    ("RWX", True), ("RWX|GUARD", True), ("rwx", True), ("RCX", True), ("R-X", False), ("RW-", False),
    ("--X", False), ("---", False), ("Unknown", False), ("", False),
])
def test_writable_executable(protection, expected):
    assert is_writable_executable(protection) is expected
