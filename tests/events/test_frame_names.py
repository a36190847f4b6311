"""Which frames are ntdll's clone and loader functions: by the symbol, case aside, with the module
at the start of the symbol or after a path's backslash (a module merely ending in "ntdll.dll" is
another module)."""

from __future__ import annotations

import pytest

from callstack_forensics.engine.stack import FoundBy, Frame, ThreadStack
from callstack_forensics.events.decode_library import LOADER_FRAMES, in_loader
from callstack_forensics.events.decode_process import CLONE_FUNCTIONS, is_clone_frame

CASES = [
    ("C:\\Windows\\System32\\ntdll.dll!RtlCloneUserProcess+0x5a", True),
    ("ntdll.dll!RtlCreateProcessReflection+0x12", True),
    ("C:\\WINDOWS\\SYSTEM32\\NTDLL.DLL!RTLCLONEUSERPROCESS", True),
    ("C:\\Windows\\System32\\myntdll.dll!RtlCloneUserProcess+0x5a", False),
    ("C:\\Windows\\System32\\ntdll.dll!RtlCreateUserProcess+0x5a", False),
    ("Unbacked+0x10", False),
    ("", False),
]


@pytest.mark.parametrize(("symbol", "expected"), CASES)
def test_a_clone_frame_is_named_by_its_symbol(symbol, expected):
    assert is_clone_frame(symbol) is expected


def _stack(*symbols: str) -> ThreadStack:
    frames = [Frame(i, 0x7FFA0000 + i, FoundBy.UNWOUND, symbol_info=s) for i, s in enumerate(symbols)]
    return ThreadStack(4, 8, "a.exe", frames=frames)


def test_the_loader_frame_is_the_first_frame_in_ldrloaddll_or_ldrploaddll():
    assert in_loader(_stack("C:\\Windows\\System32\\ntdll.dll!NtMapViewOfSection+0x14",
                            "C:\\Windows\\System32\\ntdll.dll!LdrpLoadDll+0x3c",
                            "C:\\Windows\\System32\\NTDLL.DLL!LDRLOADDLL+0x99")) == 1
    assert in_loader(_stack("ntdll.dll!LdrLoadDll+0x99")) == 0
    assert in_loader(_stack("C:\\x\\notntdll.dll!LdrLoadDll+0x99", "C:\\x\\ntdll.dll!LdrGetDllHandle")) is None


@pytest.mark.parametrize("name", CLONE_FUNCTIONS)
def test_every_clone_function_is_found(name):
    assert is_clone_frame(name + "+0x10") and is_clone_frame("C:\\Windows\\System32\\" + name.upper())


@pytest.mark.parametrize("name", LOADER_FRAMES)
def test_every_loader_function_is_found(name):
    assert in_loader(_stack("ntdll.dll!NtMapViewOfSection", "C:\\Windows\\System32\\" + name.upper() + "+0x3c")) == 1
