"""What marks a module as Windows' own, and code as a genuine system-call stub.

Shared by the event builder (is frame 0 a direct system call?) and the case report (which
frames are the Windows API layer): both must not take a module's name on trust, so a
``kernel32.dll`` loaded from elsewhere, or a syscall instruction in a program's own code,
never counts as Windows.
"""

from __future__ import annotations

import re

from .stack import Frame

# Where Windows keeps its own modules (a device path such as \device\harddiskvolume3\windows\... too).
SYSTEM_FOLDERS = ("\\windows\\system32\\", "\\windows\\syswow64\\", "\\windows\\sysnative\\", "\\windows\\winsxs\\")

# A system-call stub as Windows' own modules hold them, ending at the instruction after
# ``syscall`` (hex of the bytes before frame 0):
#   mov r10, rcx; mov eax, <number>; syscall                                  Windows 7, 8, 8.1
#   mov r10, rcx; mov eax, <number>; test byte ptr [7ffe0308h], 1; jne +3; syscall  Windows 10, 11
# Before Windows 10 the win32k stubs sit in user32.dll and gdi32.dll (and wow64win.dll for
# WOW64), not in win32u.dll; they have the same form.
_STUB_TAIL = re.compile(r"4c8bd1b8([0-9a-f]{8})(?:f604250803fe7f017503)?0f05$")


def is_system_path(path: str) -> bool:
    """Does ``path`` (a DOS or device path) lie in a Windows system folder?"""
    lowered = path.replace("/", "\\").lower()
    return any(folder in lowered for folder in SYSTEM_FOLDERS)


def system_module_name(frame: Frame) -> str | None:
    """The frame's module's lower-case file name when it lies in a Windows system folder."""
    if frame.module is None or frame.unbacked or not is_system_path(frame.module.path):
        return None
    return frame.module.name.lower()


def system_call_stub(frame: Frame) -> int | None:
    """The system-call number when ``frame`` (frame 0) sits right after the ``syscall`` of a
    genuine stub: image-backed code of a module in a Windows system folder whose bytes are
    one of Windows' stub forms; else None (a hand-written stub, unbacked code, a module
    from elsewhere)."""
    if system_module_name(frame) is None or frame.region_kind not in ("image", "unknown"):
        return None
    match = _STUB_TAIL.search(frame.callsite_leading_bytes)
    if match is None:
        return None
    return int.from_bytes(bytes.fromhex(match.group(1)), "little")
