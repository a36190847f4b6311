"""A minidump thread's debug registers: read from its CONTEXT only when the writer captured them."""

from __future__ import annotations

import struct

from callstack_forensics.memory.minidump_debug import ARCH_AMD64, ARCH_X86, decode_debug_registers


def x64_context(flags: int, registers=(0x7FFBB0E01260, 0, 0, 0, 0, 0x1)) -> bytes:
    data = bytearray(0x4D0)
    struct.pack_into("<I", data, 0x30, flags)
    struct.pack_into("<6Q", data, 0x48, *registers)
    return bytes(data)


def test_an_x64_context_with_context_debug_registers():
    regs = decode_debug_registers(x64_context(0x10001F), 0, 0x4D0, ARCH_AMD64)
    assert (regs.dr0, regs.dr7, regs.source) == (0x7FFBB0E01260, 0x1, "CONTEXT (CONTEXT_DEBUG_REGISTERS)")


def test_without_the_flag_the_registers_were_not_captured():
    assert decode_debug_registers(x64_context(0x10000B), 0, 0x4D0, ARCH_AMD64) is None  # CONTEXT_FULL only


def test_an_x86_context_and_short_or_foreign_contexts():
    data = bytearray(0x2CC)
    struct.pack_into("<I", data, 0, 0x10010)
    struct.pack_into("<6I", data, 4, 0x77001000, 0, 0, 0, 0, 0x3)
    regs = decode_debug_registers(bytes(data), 0, 0x2CC, ARCH_X86)
    assert (regs.dr0, regs.dr7) == (0x77001000, 0x3)
    assert decode_debug_registers(bytes(data), 0, 0x10, ARCH_X86) is None
    assert decode_debug_registers(x64_context(0x10001F), 0x100, 0x4D0, ARCH_AMD64) is None  # past the end
    assert decode_debug_registers(bytes(data), 0, 0x2CC, 12) is None  # ARM64: not decoded
