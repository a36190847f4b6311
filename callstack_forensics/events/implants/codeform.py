"""What the first instructions of a function do, decoded with capstone: return at once, jump
away, or neither.

Why its own module: an in-memory patch of an export takes one of a few shapes, and telling
them apart from Windows' own stubs is a question about instructions, not bytes. A bypass
makes the function return at once (``ret``; ``xor eax, eax; ret``; ``mov eax, 0x80070057;
ret`` for AmsiScanBuffer's E_INVALIDARG); a hook jumps elsewhere (``jmp rel32``,
``jmp [rip+0]`` with the address inline, ``mov rax, imm64; jmp rax``, ``push imm; ret``).
Windows ships import thunks that jump through the module's own import table, and
hot-patchable functions that jump within the module: which of those a jump is depends on
where its pointer and its target lie, which :mod:`patches` decides.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

import capstone
from capstone import x86_const as x86

MAX_INSTRUCTIONS = 4
READ_SIZE = 24
# Instructions that only set a return value before a `ret` (a stubbed-out function).
_VALUE_SETTERS = ("mov", "xor", "sub", "or", "and", "nop", "movabs")
RETURN_REGISTERS = frozenset({x86.X86_REG_EAX, x86.X86_REG_RAX, x86.X86_REG_AL, x86.X86_REG_AX,
                              x86.X86_REG_EDX, x86.X86_REG_RDX})


@dataclass(frozen=True, slots=True)
class CodeForm:
    """``form``: ``return`` (returns within its first instructions, touching only the return
    value), ``jump`` (its first instruction transfers control elsewhere), or ``None``.

    For a jump: ``target`` when it can be computed (None when its pointer is not readable),
    ``pointer_slot`` the address of the pointer an indirect jump reads (None for a direct
    jump or an immediate). ``disassembly`` lists the decoded instructions, ``length`` how
    many bytes they cover."""

    form: str | None
    disassembly: tuple[str, ...]
    length: int
    target: int | None = None
    pointer_slot: int | None = None
    return_value: int | None = None


class CodeReader:
    """Decodes the start of functions in one process (one capstone instance per bitness)."""

    def __init__(self, read_pointer: Callable[[int, int], int | None]) -> None:
        self._read_pointer = read_pointer
        self._cs = {}
        for bits, mode in ((64, capstone.CS_MODE_64), (32, capstone.CS_MODE_32)):
            cs = capstone.Cs(capstone.CS_ARCH_X86, mode)
            cs.detail = True
            self._cs[bits] = cs

    def classify(self, address: int, code: bytes, bits: int = 64) -> CodeForm:
        instructions = list(self._cs[bits].disasm(code, address, MAX_INSTRUCTIONS))
        if not instructions:
            return CodeForm(None, (), 0)
        text = tuple(f"{i.mnemonic} {i.op_str}".strip() for i in instructions)
        first = instructions[0]
        jump = self._jump(instructions, bits)
        if jump is not None:
            target, slot, used = jump
            return CodeForm("jump", text[:used], sum(i.size for i in instructions[:used]), target, slot)
        returned = _returns_at_once(instructions)
        if returned is not None:
            used, value = returned
            return CodeForm("return", text[:used], sum(i.size for i in instructions[:used]), return_value=value)
        return CodeForm(None, text[:1], first.size)

    def _jump(self, ins: list, bits: int) -> tuple[int | None, int | None, int] | None:
        first = ins[0]
        if first.id == x86.X86_INS_JMP:
            op = first.operands[0]
            if op.type == x86.X86_OP_IMM:
                return op.imm, None, 1
            if op.type == x86.X86_OP_MEM and op.mem.index == 0:
                if op.mem.base == x86.X86_REG_RIP:
                    slot = first.address + first.size + op.mem.disp
                elif op.mem.base == 0:
                    slot = op.mem.disp & 0xFFFFFFFF
                else:
                    return None
                return self._read_pointer(slot, bits // 8), slot, 1
            return None
        if len(ins) >= 2 and first.id in (x86.X86_INS_MOV, x86.X86_INS_MOVABS) and ins[1].id == x86.X86_INS_JMP:
            dst, src = first.operands
            jmp = ins[1].operands[0]
            if src.type == x86.X86_OP_IMM and dst.type == x86.X86_OP_REG and jmp.type == x86.X86_OP_REG \
                    and jmp.reg == dst.reg:
                return src.imm & ((1 << bits) - 1), None, 2
        if first.id == x86.X86_INS_PUSH and first.operands[0].type == x86.X86_OP_IMM and len(ins) >= 2:
            low = first.operands[0].imm & 0xFFFFFFFF
            if ins[1].id == x86.X86_INS_RET:
                return (first.operands[0].imm & ((1 << bits) - 1)), None, 2
            if bits == 64 and len(ins) >= 3 and ins[2].id == x86.X86_INS_RET and _writes_high_half(ins[1]):
                return low | (ins[1].operands[1].imm & 0xFFFFFFFF) << 32, None, 3
        return None


def _writes_high_half(ins) -> bool:
    """``mov dword ptr [rsp + 4], imm32``: the upper half of a pushed 64-bit address."""
    if ins.id != x86.X86_INS_MOV or len(ins.operands) != 2:
        return False
    dst, src = ins.operands
    return (dst.type == x86.X86_OP_MEM and dst.mem.base == x86.X86_REG_RSP and dst.mem.disp == 4
            and src.type == x86.X86_OP_IMM)


def _returns_at_once(ins: list) -> tuple[int, int | None] | None:
    """(instructions used, the value set in eax/rax) when the code only sets a return value and
    returns; None otherwise."""
    value = None
    for count, instruction in enumerate(ins, start=1):
        if instruction.id == x86.X86_INS_RET:
            return count, value
        if instruction.mnemonic not in _VALUE_SETTERS or not _register_only(instruction):
            return None
        if instruction.mnemonic in ("mov", "movabs") and instruction.operands[1].type == x86.X86_OP_IMM:
            value = instruction.operands[1].imm & 0xFFFFFFFFFFFFFFFF
        elif instruction.mnemonic in ("xor", "sub") and _same_register(instruction):
            value = 0
    return None


def _register_only(ins) -> bool:
    """Writes only a return-value register, from a register or an immediate (no memory)."""
    if ins.mnemonic == "nop":
        return True
    operands = ins.operands
    if not operands or operands[0].type != x86.X86_OP_REG or operands[0].reg not in RETURN_REGISTERS:
        return False
    return all(op.type in (x86.X86_OP_REG, x86.X86_OP_IMM) for op in operands)


def _same_register(ins) -> bool:
    a, b = ins.operands
    return a.type == b.type == x86.X86_OP_REG and a.reg == b.reg


def pointer_reader(read: Callable[[int, int], bytes]) -> Callable[[int, int], int | None]:
    """A pointer read (4 or 8 bytes) that says None for memory the source does not hold."""
    def read_pointer(address: int, size: int) -> int | None:
        try:
            data = read(address, size)
        except Exception:  # MemoryMissing or a hostile source: the target is unknown
            return None
        return struct.unpack("<Q" if size == 8 else "<I", data)[0]

    return read_pointer
