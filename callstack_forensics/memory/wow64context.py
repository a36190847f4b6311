"""The 32-bit context of a WOW64 thread, read from its 64-bit TEB.

A 64-bit view of a 32-bit process (a memory image, or the 64-bit minidump Task Manager writes
of a 32-bit process) holds each thread's 64-bit context, stopped inside the WOW64 layer. The
32-bit code's own registers are in the WOW64 CPU area, ``TEB64.TlsSlots[WOW64_TLS_CPURESERVED]``
(a WOW64_CPURESERVED: USHORT Flags, USHORT Machine, then the x86 CONTEXT), and its stack bounds
in the 32-bit TEB, which ``TEB64.NtTib.ExceptionList`` points at.
"""

from __future__ import annotations

import struct
from typing import Callable

from .interface import Wow64Context

TEB64_TLS_SLOTS = 0x1480
WOW64_TLS_CPURESERVED = 1
WOW64_CPURESERVED_CONTEXT = 4  # USHORT Flags; USHORT Machine; then the CONTEXT
CONTEXT32_EBP, CONTEXT32_EIP, CONTEXT32_ESP = 0xB4, 0xB8, 0xC4
CONTEXT32_SIZE = 0xCC
TEB32_STACK_BASE = 4  # NT_TIB32: ExceptionList, StackBase, StackLimit


def read_wow64_context(read: Callable[[int, int], bytes], teb64: int) -> Wow64Context | None:
    """The thread's 32-bit context, or None when its CPU area holds none (a thread that never
    ran 32-bit code). ``read`` raises MemoryMissing for what the source lacks."""
    (area,) = struct.unpack("<Q", read(teb64 + TEB64_TLS_SLOTS + 8 * WOW64_TLS_CPURESERVED, 8))
    if not area:
        return None
    context = read(area + WOW64_CPURESERVED_CONTEXT, CONTEXT32_SIZE)
    (ebp,) = struct.unpack_from("<I", context, CONTEXT32_EBP)
    (eip,) = struct.unpack_from("<I", context, CONTEXT32_EIP)
    (esp,) = struct.unpack_from("<I", context, CONTEXT32_ESP)
    if not eip:
        return None
    (teb32,) = struct.unpack("<Q", read(teb64, 8))
    base32 = limit32 = 0
    if teb32 and teb32 < 1 << 32:
        base32, limit32 = struct.unpack("<II", read(teb32 + TEB32_STACK_BASE, 8))
    return Wow64Context(eip, esp, ebp, base32 or None, limit32 or None)
