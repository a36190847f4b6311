"""x64 unwinding from UNWIND_INFO, as Windows' RtlVirtualUnwind does it.

One call to :func:`virtual_unwind` turns the register state inside a function
into the state in its caller. The opcodes are applied in array order (the
reverse of the prolog); when the instruction pointer is still inside the
prolog only the codes whose ``CodeOffset`` it has passed count; when it sits in
an epilog, the epilog is emulated instead. Chained entries continue with their
parent's codes. See Microsoft's "x64 exception handling" documentation.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

from ..memory import MemoryMissing
from .pe import ImageError, PeImage, RuntimeFunction

UWOP_PUSH_NONVOL = 0
UWOP_ALLOC_LARGE = 1
UWOP_ALLOC_SMALL = 2
UWOP_SET_FPREG = 3
UWOP_SAVE_NONVOL = 4
UWOP_SAVE_NONVOL_FAR = 5
UWOP_EPILOG = 6  # version 2; SAVE_XMM in the never-shipped version 1 meaning
UWOP_SPARE_CODE = 7  # SAVE_XMM_FAR in version 1
UWOP_SAVE_XMM128 = 8
UWOP_SAVE_XMM128_FAR = 9
UWOP_PUSH_MACHFRAME = 10

UNW_FLAG_EHANDLER = 1
UNW_FLAG_UHANDLER = 2
UNW_FLAG_CHAININFO = 4

MAX_CHAIN_DEPTH = 32

REG_NAMES = (
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
)  # fmt: skip


class UnwindError(Exception):
    """Unwinding this frame is not possible from the data at hand."""


@dataclass(frozen=True, slots=True)
class UnwindCode:
    offset: int  # prolog offset of the instruction *after* the one this code describes
    op: int
    info: int
    operand: int  # decoded operand (size, offset...), 0 when none
    slots: int


@dataclass(frozen=True, slots=True)
class UnwindInfo:
    version: int
    flags: int
    prolog_size: int
    frame_register: int
    frame_offset: int
    codes: tuple[UnwindCode, ...]
    chained: RuntimeFunction | None
    epilogs: tuple[int, ...] = ()  # version 2: epilog start offsets from function end
    epilog_size: int = 0

    def frame_size(self) -> int:
        """Bytes the complete prolog adds below the return address (fixed frames)."""
        size = 0
        for code in self.codes:
            if code.op == UWOP_PUSH_NONVOL:
                size += 8
            elif code.op in (UWOP_ALLOC_LARGE, UWOP_ALLOC_SMALL):
                size += code.operand
        return size


_SLOTS = {
    UWOP_PUSH_NONVOL: 1,
    UWOP_ALLOC_SMALL: 1,
    UWOP_SET_FPREG: 1,
    UWOP_SAVE_NONVOL: 2,
    UWOP_SAVE_NONVOL_FAR: 3,
    UWOP_EPILOG: 2,  # version 1 meaning (SAVE_XMM); version 2 descriptors are handled apart
    UWOP_SPARE_CODE: 3,
    UWOP_SAVE_XMM128: 2,
    UWOP_SAVE_XMM128_FAR: 3,
    UWOP_PUSH_MACHFRAME: 1,
}


def parse_unwind_info(image: PeImage, rva: int) -> UnwindInfo:
    """Decode the UNWIND_INFO at ``rva`` (cached on the image: system DLLs repeat)."""
    cached = image.unwind_cache.get(rva)
    if cached is not None:
        return cached
    try:
        head = image.read(rva, 4)
        ver_flags, prolog, count, frame = head
        raw = image.read(rva + 4, 2 * count)
    except MemoryMissing as exc:
        raise UnwindError(f"UNWIND_INFO at rva {rva:#x} not present") from exc
    version, flags = ver_flags & 7, ver_flags >> 3
    if version not in (1, 2):
        raise UnwindError(f"UNWIND_INFO at rva {rva:#x} has version {version}")
    if frame & 0xF == 4:
        # RSP cannot be a frame pointer: "rsp = rsp - offset" would unwind to a caller *below*
        # the callee. No compiler emits it (none of 167k records in Wine's DLLs); crafted data does.
        raise UnwindError(f"UNWIND_INFO at rva {rva:#x} names rsp as its frame register")
    slots = struct.unpack(f"<{count}H", raw)
    codes, epilogs, epilog_size = _decode_codes(slots, version, rva)
    chained = None
    if flags & UNW_FLAG_CHAININFO:
        chain_rva = rva + 4 + 2 * (count + (count & 1))
        try:
            b, e, u = struct.unpack("<III", image.read(chain_rva, 12))
        except MemoryMissing as exc:
            raise UnwindError(f"chained entry at rva {chain_rva:#x} not present") from exc
        chained = RuntimeFunction(b, e, u)
    info = UnwindInfo(version, flags, prolog, frame & 0xF, frame >> 4, codes, chained, epilogs, epilog_size)
    image.unwind_cache[rva] = info
    return info


def _decode_codes(
    slots: tuple[int, ...], version: int, rva: int
) -> tuple[tuple[UnwindCode, ...], tuple[int, ...], int]:
    codes: list[UnwindCode] = []
    epilogs: list[int] = []
    epilog_size = 0
    i = 0
    while i < len(slots):
        offset, op, info = slots[i] & 0xFF, (slots[i] >> 8) & 0xF, slots[i] >> 12
        if op == UWOP_ALLOC_LARGE:
            n = 2 if info == 0 else 3
        elif op in _SLOTS:
            n = _SLOTS[op]
        else:
            raise UnwindError(f"unknown unwind opcode {op} at rva {rva:#x}")
        if op == UWOP_EPILOG and version == 2:
            # Version 2 epilog descriptors, one slot each: the first gives the epilog size
            # (info bit 0: an epilog ends the function), the next ones give each epilog's
            # distance back from the function end (0 is padding).
            if not epilog_size:
                epilog_size = offset
                if info & 1:
                    epilogs.append(epilog_size)
            elif offset | (info << 8):
                epilogs.append(offset | (info << 8))
            i += 1
            continue
        if i + n > len(slots):
            raise UnwindError(f"truncated unwind code at rva {rva:#x}")
        operand = _operand(op, info, slots[i + 1 : i + n])
        codes.append(UnwindCode(offset, op, info, operand, n))
        i += n
    return tuple(codes), tuple(epilogs), epilog_size


def _operand(op: int, info: int, extra: tuple[int, ...]) -> int:
    if op == UWOP_ALLOC_SMALL:
        return info * 8 + 8
    if op == UWOP_ALLOC_LARGE:
        return extra[0] * 8 if info == 0 else extra[0] | (extra[1] << 16)
    if op in (UWOP_SAVE_NONVOL, UWOP_SAVE_XMM128):
        return extra[0] * (8 if op == UWOP_SAVE_NONVOL else 16)
    if op in (UWOP_SAVE_NONVOL_FAR, UWOP_SAVE_XMM128_FAR, UWOP_SPARE_CODE):
        return extra[0] | (extra[1] << 16)
    return 0


class Registers:
    """Integer register state during an unwind; None marks a value we do not know.

    ``rip`` and ``rsp`` are plain attributes, the other registers a dict by name: the walk reads
    the two on every step of every frame (a dozen times a frame), where a property over the dict
    cost a call each time."""

    __slots__ = ("rip", "rsp", "_others")

    def __init__(self, values: dict[str, int | None] | None = None) -> None:
        others = dict(values) if values else {}
        self.rip: int | None = others.pop("rip", None)
        self.rsp: int | None = others.pop("rsp", None)
        self._others = others

    def get(self, name: str) -> int | None:
        if name == "rsp":
            return self.rsp
        if name == "rip":
            return self.rip
        return self._others.get(name)

    def set(self, name: str, value: int | None) -> None:
        if name == "rsp":
            self.rsp = value
        elif name == "rip":
            self.rip = value
        else:
            self._others[name] = value

    def copy(self) -> "Registers":
        out = Registers.__new__(Registers)
        out.rip, out.rsp, out._others = self.rip, self.rsp, dict(self._others)
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Registers):
            return NotImplemented
        return (self.rip, self.rsp, self._others) == (other.rip, other.rsp, other._others)

    def __repr__(self) -> str:
        return f"Registers(rip={self.rip!r}, rsp={self.rsp!r}, {self._others!r})"


class StackReader:
    """What the unwinder needs from memory: 64-bit reads, MemoryMissing when absent."""

    def __init__(self, read, qword=None) -> None:
        """``read(address, size)``: exactly ``size`` bytes or MemoryMissing; ``qword(address)``:
        the same for 8 bytes as an integer, where the memory has a faster way to give it."""
        self._read = read
        if qword is not None:
            self.u64 = qword

    def u64(self, address: int) -> int:
        return struct.unpack("<Q", self._read(address, 8))[0]

    def read(self, address: int, size: int) -> bytes:
        return self._read(address, size)


def virtual_unwind(
    image: PeImage,
    image_base: int,
    function: RuntimeFunction | None,
    regs: Registers,
    stack: StackReader,
    in_prolog_possible: bool,
) -> Registers:
    """Return the caller's registers (``rip`` = return address, ``rsp`` after the return).

    ``function`` is None for a leaf without unwind data: the return address is
    at [rsp]. ``in_prolog_possible`` is True for frame 0 (an interrupted thread
    may stop anywhere); for callers the return address lies past the prolog.
    Raises :class:`UnwindError` (bad unwind data) or :class:`MemoryMissing`.
    """
    rip, rsp = regs.rip, regs.rsp
    if rip is None or rsp is None:
        raise UnwindError("rip or rsp unknown")
    if function is None:
        return leaf_unwind(regs, stack)
    out = regs.copy()
    rva = rip - image_base
    primary = primary_entry(image, function)
    info = parse_unwind_info(image, primary.unwind)
    if in_prolog_possible:
        epilog = _emulate_epilog(image, image_base, (function, primary), info, out, stack)
        if epilog is not None:
            return epilog
        # An indirect entry's code (a fragment split off its function) runs after the primary's
        # prolog, as RtlVirtualUnwind sees it: only the primary's own bytes can be inside it.
        prolog_offset = rva - primary.begin if primary.contains(rva) else 1 << 30
    else:
        prolog_offset = 1 << 30
    machframe = _apply_chain(image, function, info, prolog_offset, out, stack)
    if machframe:
        return out
    return _pop_return(out, stack)


def primary_entry(image: PeImage, function: RuntimeFunction) -> RuntimeFunction:
    """``function``, or the ``.pdata`` entry its indirect UnwindData points at."""
    try:
        return image.primary_entry(function)
    except ImageError as exc:
        raise UnwindError(str(exc)) from exc


def leaf_unwind(regs: Registers, stack: StackReader) -> Registers:
    """The caller of code without unwind data that did not move RSP: return address at [rsp]."""
    return _pop_return(regs.copy(), stack)


def _pop_return(regs: Registers, stack: StackReader) -> Registers:
    rsp = regs.rsp
    assert rsp is not None
    regs.rip = stack.u64(rsp)
    regs.rsp = rsp + 8
    return regs


def _apply_chain(
    image: PeImage,
    function: RuntimeFunction,
    info: UnwindInfo,
    prolog_offset: int,
    regs: Registers,
    stack: StackReader,
) -> bool:
    """Apply this entry's codes and then its chained parents'; True if a machine frame was popped."""
    seen = {function.unwind}
    depth = 0
    while True:
        if _apply_codes(info, prolog_offset, regs, stack):
            return True
        if info.chained is None:
            return False
        depth += 1
        parent = primary_entry(image, info.chained)
        if depth > MAX_CHAIN_DEPTH or parent.unwind in seen:
            raise UnwindError(f"chained unwind info loops at rva {parent.unwind:#x}")
        seen.add(parent.unwind)
        info = parse_unwind_info(image, parent.unwind)
        prolog_offset = 1 << 30  # the parent's prolog has run completely


def _frame_base(info: UnwindInfo, prolog_offset: int, regs: Registers) -> int:
    """The established frame: RSP after the fixed allocation, or FP - offset*16 once set."""
    rsp = regs.rsp
    assert rsp is not None
    if info.frame_register:
        setfp = next((c for c in info.codes if c.op == UWOP_SET_FPREG), None)
        if setfp is not None and prolog_offset >= setfp.offset:
            fp = regs.get(REG_NAMES[info.frame_register])
            if fp is None:
                raise UnwindError(f"frame register {REG_NAMES[info.frame_register]} unknown")
            return fp - info.frame_offset * 16
    return rsp


def _apply_codes(info: UnwindInfo, prolog_offset: int, regs: Registers, stack: StackReader) -> bool:
    frame = _frame_base(info, prolog_offset, regs)
    for code in info.codes:
        if code.offset > prolog_offset:
            continue  # the prolog had not executed this instruction yet
        rsp = regs.rsp
        assert rsp is not None
        op = code.op
        if op == UWOP_PUSH_NONVOL:
            regs.set(REG_NAMES[code.info], stack.u64(rsp))
            regs.rsp = rsp + 8
        elif op in (UWOP_ALLOC_LARGE, UWOP_ALLOC_SMALL):
            regs.rsp = rsp + code.operand
        elif op == UWOP_SET_FPREG:
            regs.rsp = frame
        elif op in (UWOP_SAVE_NONVOL, UWOP_SAVE_NONVOL_FAR):
            regs.set(REG_NAMES[code.info], stack.u64(frame + code.operand))
        elif op in (UWOP_SAVE_XMM128, UWOP_SAVE_XMM128_FAR, UWOP_SPARE_CODE):
            pass  # XMM registers are not needed to find return addresses
        elif op == UWOP_PUSH_MACHFRAME:
            base = rsp + (8 if code.info else 0)  # info 1: an error code was pushed first
            regs.set("rip", stack.u64(base))
            regs.set("rsp", stack.u64(base + 24))
            return True
    return False


# ---- epilog emulation --------------------------------------------------------

_POP_REG = {0x58 + i: REG_NAMES[i] for i in range(8)}


def _emulate_epilog(
    image: PeImage,
    image_base: int,
    function: tuple[RuntimeFunction, ...],
    info: UnwindInfo,
    regs: Registers,
    stack: StackReader,
) -> Registers | None:
    """If ``rip`` sits in an epilog, run the rest of it and return the caller's state.

    An x64 epilog has a strict form (``add rsp,N`` or ``lea rsp,[fp+N]``, then
    ``pop`` of non-volatile registers, then ``ret`` or a ``jmp`` tail call), which
    is what makes this recognition reliable, as Windows itself relies on it.
    """
    rip = regs.rip
    assert rip is not None
    try:
        code = stack.read(rip, 48)
    except MemoryMissing:
        try:
            code = stack.read(rip, 16)
        except MemoryMissing:
            return None
    return _run_epilog(code, regs, stack, info.frame_register,
                       lambda i: _is_epilog_end(code, i, rip + i, image_base, function))


def leaf_epilog(code: bytes, regs: Registers, stack: StackReader) -> Registers | None:
    """Frame 0 of code without unwind data (a syscall stub of a module whose bytes are not in
    the source but whose instruction bytes at ``rip`` are: a crash dump keeps 256 bytes around
    each thread's instruction pointer): if ``code`` (the bytes at ``rip``) is ``[add rsp, N]
    [pop reg]* ret``, the CPU's next steps are certain and give the caller. Jumps are not
    taken: without function bounds a tail call cannot be told from a jump inside the function."""
    return _run_epilog(code, regs, stack, 0, lambda i: i < len(code) and code[i] in (0xC3, 0xC2))


def _run_epilog(
    code: bytes, regs: Registers, stack: StackReader, frame_register: int, ends: Callable[[int], bool]
) -> Registers | None:
    """Run ``code`` as ``add rsp/lea rsp``, pops, then an end ``ends`` accepts; None if it is not that."""
    rsp = regs.rsp
    assert rsp is not None
    i = 0
    new_rsp = rsp
    step = _match_stack_adjust(code, i, frame_register, regs)
    if step is not None:
        i, new_rsp = step[0], step[1]
    pops: list[tuple[str, int]] = []
    while i < len(code):
        b = code[i]
        if b in _POP_REG:
            pops.append((_POP_REG[b], 1))
            i += 1
        elif b == 0x41 and i + 1 < len(code) and 0x58 <= code[i + 1] <= 0x5F:
            pops.append((REG_NAMES[8 + code[i + 1] - 0x58], 2))
            i += 2
        else:
            break
    if not ends(i):
        return None
    out = regs.copy()
    cur = new_rsp
    for name, _len in pops:
        out.set(name, stack.u64(cur))
        cur += 8
    out.set("rsp", cur)
    return _pop_return(out, stack)


def _match_stack_adjust(code: bytes, i: int, frame_register: int, regs: Registers) -> tuple[int, int] | None:
    rsp = regs.rsp
    assert rsp is not None
    if code[i : i + 3] == b"\x48\x83\xc4":  # add rsp, imm8
        return i + 4, rsp + code[i + 3]
    if code[i : i + 3] == b"\x48\x81\xc4":  # add rsp, imm32
        return i + 7, rsp + struct.unpack("<I", code[i + 3 : i + 7])[0]
    if frame_register and len(code) > i + 3 and code[i] in (0x48, 0x49) and code[i + 1] == 0x8D:
        modrm = code[i + 2]
        rm = (modrm & 7) | (8 if code[i] == 0x49 else 0)
        if (modrm >> 3) & 7 == 4 and rm == frame_register and rm & 7 != 4:
            fp = regs.get(REG_NAMES[rm])
            if fp is None:
                return None
            mod = modrm >> 6
            if mod == 1:
                return i + 4, fp + struct.unpack("<b", code[i + 3 : i + 4])[0]
            if mod == 2:
                return i + 7, fp + struct.unpack("<i", code[i + 3 : i + 7])[0]
    return None


def _is_epilog_end(code: bytes, i: int, address: int, image_base: int, function: tuple[RuntimeFunction, ...]) -> bool:
    """``function``: the entry ``rip`` is in and its primary; a jump that stays in either is no tail call."""
    if i >= len(code):
        return False
    b = code[i]
    if b in (0xC3, 0xC2):  # ret / ret imm16
        return True
    if b == 0xF3 and i + 1 < len(code) and code[i + 1] == 0xC3:  # rep ret
        return True
    if b == 0xE9 and i + 5 <= len(code):  # jmp rel32: a tail call leaves the function
        target = address + 5 + struct.unpack("<i", code[i + 1 : i + 5])[0] - image_base
        return not any(f.contains(target) for f in function)
    if b == 0xEB and i + 2 <= len(code):  # jmp rel8 out of the function
        target = address + 2 + struct.unpack("<b", code[i + 1 : i + 2])[0] - image_base
        return not any(f.contains(target) for f in function)
    if b == 0xFF and i + 1 < len(code) and (code[i + 1] >> 3) & 7 == 4:  # jmp [mem] / jmp reg
        return True
    if b == 0x48 and i + 2 < len(code) and code[i + 1] == 0xFF and (code[i + 2] >> 3) & 7 == 4:  # rex.w jmp
        return True
    return False
