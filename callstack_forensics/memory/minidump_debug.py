"""The debug registers of a minidump thread's CONTEXT, when the writer captured them.

Why apart from minidump.py's general registers: Dr0-Dr7 are in the CONTEXT only when its
ContextFlags include CONTEXT_DEBUG_REGISTERS (dbghelp asks for them; other writers may not).
Without that flag the bytes are whatever the writer left there, so the thread says "not
captured" (None), never "no breakpoints". The offsets are the ABI's (winnt.h), not a build's.
"""

from __future__ import annotations

import struct

from .implantstate import DebugRegisters

ARCH_X86, ARCH_AMD64 = 0, 9
# (ContextFlags offset, CONTEXT_DEBUG_REGISTERS, Dr0 offset, pointer format, bytes needed)
_LAYOUTS = {
    ARCH_AMD64: (0x30, 0x100010, 0x48, "<6Q", 0x78),  # Dr0..Dr3, Dr6, Dr7 from 0x48
    ARCH_X86: (0x00, 0x10010, 0x04, "<6I", 0x1C),
}
SOURCE = "CONTEXT (CONTEXT_DEBUG_REGISTERS)"


def decode_debug_registers(data: bytes, rva: int, size: int, arch: int) -> DebugRegisters | None:
    """Dr0-Dr3, Dr6, Dr7 of the CONTEXT at ``rva``; None when the writer did not capture them."""
    layout = _LAYOUTS.get(arch)
    if layout is None:
        return None
    flags_at, flag, dr0_at, fmt, need = layout
    if size < need or rva + need > len(data):
        return None
    (flags,) = struct.unpack_from("<I", data, rva + flags_at)
    if flags & flag != flag:
        return None
    dr0, dr1, dr2, dr3, dr6, dr7 = struct.unpack_from(fmt, data, rva + dr0_at)
    return DebugRegisters(dr0, dr1, dr2, dr3, dr6, dr7, SOURCE)
