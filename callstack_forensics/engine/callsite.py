"""Call-site validation: is a return address preceded by a call that ends exactly there?

A genuine return address always follows a ``call``. Checking that is what
separates a real frame from a stale value on the stack, and a spoofed or ROP
stack from a normal one. A cheap byte pre-filter picks the candidate lengths
(E8 rel32; FF /2 with any ModRM/SIB/displacement, REX and prefixes) and
capstone confirms the decode, so the target can be resolved and recorded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

import capstone

# Longest x86 call with prefixes: segment/66/67 + REX + FF + ModRM + SIB + disp32. With fewer
# bytes before a return address than this, a call the bytes do not show may still end there.
MAX_CALL_LENGTH = _MAX_CALL_LEN = 10
_MAX_INSN_LEN = 15  # the longest x86 instruction: the bytes past it cannot change the first one
_CACHE_LIMIT = 200_000  # decodes kept per decoder (a process); past it a cache starts afresh


@dataclass(frozen=True, slots=True)
class CallSite:
    """A call instruction that ends at a return address."""

    address: int  # where the call instruction starts
    length: int
    text: str  # "call qword ptr [rip + 0x1234]"
    target: int | None  # resolved callee, when the operand allows it


class CallSiteDecoder:
    """Decodes the call before a return address (64- or 32-bit), with a per-address cache."""

    def __init__(self, bits: int = 64) -> None:
        mode = capstone.CS_MODE_64 if bits == 64 else capstone.CS_MODE_32
        self._cs = capstone.Cs(capstone.CS_ARCH_X86, mode)
        self._cs.detail = False
        self._bits = bits
        self._cache: dict[tuple[int, bytes], CallSite | None] = {}
        self._first: dict[tuple[int, bytes], str | None] = {}

    def decode(
        self,
        return_address: int,
        leading: bytes,
        read_pointer: Callable[[int], int | None] | None = None,
    ) -> CallSite | None:
        """The call ending at ``return_address``; ``leading`` are the bytes right before it."""
        tail = leading[-_MAX_CALL_LEN:]
        key = (return_address, tail)
        if key in self._cache:
            return self._cache[key]
        site = self._decode(return_address, tail, read_pointer)
        if len(self._cache) > _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = site
        return site

    def first_instruction(self, code: bytes, address: int) -> str | None:
        """The first instruction of ``code`` as text (``ret``, ``jmp rax``), or None. On this
        decoder's disassembler: building one costs more than the decode, and the integrity
        checks ask for several per thread, most at addresses other threads asked for already (a
        thread's start routine, the instruction after a return address), hence the cache."""
        key = (address, code[:_MAX_INSN_LEN])
        if key in self._first:
            return self._first[key]
        insn = next(self._cs.disasm(key[1], address, 1), None)
        text = None if insn is None else f"{insn.mnemonic} {insn.op_str}".strip()
        if len(self._first) > _CACHE_LIMIT:
            self._first.clear()
        self._first[key] = text
        return text

    def _decode(
        self, ret: int, tail: bytes, read_pointer: Callable[[int], int | None] | None
    ) -> CallSite | None:
        for length in _candidate_lengths(tail):
            code = tail[-length:]
            insns = list(self._cs.disasm(code, ret - length, 1))
            if not insns:
                continue
            insn = insns[0]
            if insn.size != length or insn.mnemonic != "call":
                continue
            target = self._target(insn, ret, code, read_pointer)
            return CallSite(ret - length, length, f"{insn.mnemonic} {insn.op_str}".strip(), target)
        return None

    def _target(self, insn, ret: int, code: bytes, read_pointer) -> int | None:
        mask = (1 << self._bits) - 1
        if code[0] == 0xE8:
            return (ret + struct.unpack("<i", code[1:5])[0]) & mask
        op = insn.op_str
        if op.startswith("0x"):
            try:
                return int(op, 16)
            except ValueError:
                return None
        if read_pointer is None:
            return None
        slot = _rip_relative_slot(op, ret) if self._bits == 64 else _absolute_slot(op)
        return read_pointer(slot) if slot is not None else None


def _candidate_lengths(tail: bytes) -> list[int]:
    """Lengths L for which ``tail[-L:]`` could be a call: E8 first, then FF /2 longest-first
    (``41 ff d3`` is ``call r11``; its last two bytes alone would read as ``call rbx``)."""
    n = len(tail)
    out: list[int] = []
    if n >= 5 and tail[-5] == 0xE8:
        out.append(5)
    for length in range(min(n, _MAX_CALL_LEN), 1, -1):
        start = n - length
        if _ff2_at(tail, start):
            out.append(length)
    return out


def _ff2_at(tail: bytes, start: int) -> bool:
    """Does an FF /2 (call r/m) opcode begin at ``start``, after optional prefixes?"""
    i = start
    while i < len(tail) and tail[i] in (0x2E, 0x3E, 0x26, 0x36, 0x64, 0x65, 0x66, 0x67, 0xF2, 0xF3):
        i += 1
    if i < len(tail) and 0x40 <= tail[i] <= 0x4F:
        i += 1
    return i + 1 < len(tail) and tail[i] == 0xFF and (tail[i + 1] >> 3) & 7 == 2


def _rip_relative_slot(op: str, ret: int) -> int | None:
    # capstone prints "qword ptr [rip + 0x1f2e]"; the displacement is relative to the next insn
    if "[rip" not in op:
        return None
    inner = op[op.index("[rip") + 4 : op.index("]")].replace(" ", "")
    if not inner:
        return ret
    try:
        return ret + int(inner, 16) if inner[0] == "+" else ret - int(inner[1:], 16)
    except ValueError:
        return None


def _absolute_slot(op: str) -> int | None:
    # 32-bit "dword ptr [0x77123456]" (import thunks) or "dword ptr fs:[0xc0]"
    if ":" in op or "[0x" not in op:
        return None
    try:
        return int(op[op.index("[0x") + 1 : op.index("]")], 16)
    except ValueError:
        return None
