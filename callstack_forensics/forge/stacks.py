"""Composing a thread's 64-bit user stack that a real unwinder must walk.

Frames are named innermost first. For every caller the return address is the
end of a genuine ``call`` in that function, chosen so that its target is the
next frame's function (directly, through the bound import table, or through a
register when the callee is reached through a pointer). Each frame's size is
read from the function's UNWIND_INFO at that call site, saved registers land in
the slots the prolog pushed them to (so a frame-pointer function's RBP unwinds
right), and the finished stack is walked back with the stack engine's own
``virtual_unwind`` as a self-check. Frames in private memory (no unwind data)
are generated as small real call sequences in their region.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..memory import MemoryMissing
from ..engine.unwind import (
    UWOP_ALLOC_LARGE, UWOP_ALLOC_SMALL, UWOP_PUSH_MACHFRAME, UWOP_PUSH_NONVOL, UWOP_SAVE_NONVOL,
    UWOP_SAVE_NONVOL_FAR, UWOP_SET_FPREG, REG_NAMES, Registers, StackReader, UnwindError, UnwindInfo,
    parse_unwind_info, virtual_unwind,
)
from .codespace import CodeRegion, CodeSpace, FrameError, FrameSpec
from .modules import MappedImage

NONVOLATILE = ("rbx", "rbp", "rdi", "rsi", "r12", "r13", "r14", "r15")
UNBACKED_FRAME = 0x68          # what generated private-memory callers allocate (sub rsp, 68h: home + 9 args)
STACK_TOP_PAD = 0x30           # above RtlUserThreadStart's return slot, as on a fresh thread
SYSCALL_ENCODINGS = {          # the stub forms the seed's direct-syscall rule matches
    "4c8bd1b8": (b"\x4c\x8b\xd1", True),
    "4989cab8": (b"\x49\x89\xca", True),
    "4c8bd1": (b"\x4c\x8b\xd1", False),
    "4989ca": (b"\x49\x89\xca", False),
}


class ComposeError(Exception):
    """The named call chain cannot be laid out as a real stack; the message says which frame and why."""


@dataclass(slots=True)
class Frame:
    """One resolved frame: where it returns (or executes, frame 0) and how big it is."""

    spec: FrameSpec
    address: int
    entry: int | None            # what a call into this frame targets (function or snippet start)
    image: MappedImage | None = None
    region: CodeRegion | None = None
    leaf: bool = False           # no frame of its own: the return address is at [rsp]


@dataclass(slots=True)
class Composition:
    rip: int
    rsp: int
    registers: dict[str, int]
    stack: dict[int, bytes]               # address -> bytes to write in the stack region
    return_addresses: list[int]           # frame 0's rip first
    syscall_number: int | None
    start_address: int | None             # the routine the thread was started at (Win32StartAddress)
    labels: list[str] = field(default_factory=list)
    allocations: dict[int, tuple[int, int]] = field(default_factory=dict)  # frame -> [body rsp, top of locals)


class StackComposer:
    """Lays out one thread's stack in one process's :class:`CodeSpace`."""

    def __init__(self, space: CodeSpace) -> None:
        self.space = space

    def compose(self, names: list[str], stack_base: int, syscall: int | None = None,
                encoding: str = "4c8bd1b8", in_syscall: bool = True) -> Composition:
        if not names:
            raise ComposeError("a thread with user context needs at least one frame")
        specs = [FrameSpec.parse(n) for n in names]
        frames = self._resolve(specs, syscall, encoding, in_syscall)
        comp = self._layout(frames, stack_base)
        comp.syscall_number = (syscall if syscall is not None else self._syscall_number(frames[0], syscall)) \
            if in_syscall else None
        comp.start_address = self._start_address(frames)
        comp.labels = list(names)
        self._verify(frames, comp)
        return comp

    # ---- resolving names -----------------------------------------------------

    def _resolve(self, specs: list[FrameSpec], syscall: int | None, encoding: str, in_syscall: bool) -> list[Frame]:
        frames: list[Frame] = []
        for index, spec in enumerate(specs):
            callee = frames[-1] if frames else None
            try:
                if index == 0:
                    frames.append(self._frame_zero(spec, syscall, encoding, in_syscall))
                else:
                    frames.append(self._caller(spec, callee))
            except FrameError as exc:
                raise ComposeError(f"frame {index} '{spec.text}': {exc}") from exc
        return frames

    def _frame_zero(self, spec: FrameSpec, syscall: int | None, encoding: str, in_syscall: bool) -> Frame:
        image = self.space.image_named(spec.name)
        if image is not None:
            if spec.function and spec.offset is None and in_syscall and _stub_ssn(image, spec.function) is not None:
                start = image.address_of(spec.function)
                return Frame(spec, start + _syscall_end(image, start), start, image, leaf=True)
            return self._module_frame(spec, image, None)
        region = self._region(spec)
        if spec.offset is not None:
            return Frame(spec, region.base + spec.offset, None, region=region)
        if in_syscall:
            if syscall is None:
                raise FrameError("a thread in a system call from private memory needs `syscall`")
            start = region.append(syscall_stub(encoding, syscall))
            code = region.data[start - region.base:]
            return Frame(spec, start + code.index(b"\x0f\x05") + 2, start, region=region, leaf=True)
        start = region.append(b"\xf3\x90\xeb\xfc")  # pause; jmp $-2: a thread spinning in its payload
        return Frame(spec, start, start, region=region)

    def _caller(self, spec: FrameSpec, callee: Frame) -> Frame:
        image = self.space.image_named(spec.name)
        if image is not None:
            return self._module_frame(spec, image, callee)
        region = self._region(spec)
        if spec.offset is not None:
            return Frame(spec, region.base + spec.offset, None, region=region)
        start, ret = _call_snippet(region, callee.entry)
        return Frame(spec, ret, start, region=region)

    def _module_frame(self, spec: FrameSpec, image: MappedImage, callee: Frame | None) -> Frame:
        if spec.function is None:
            if spec.offset is None:
                raise FrameError(f"name a function ({image.entry.name}!Function) or an offset ({spec.name}+0x...)")
            address = image.base + spec.offset
            name = self.space.function_containing(image, spec.offset)
            entry = image.address_of(name) if name else None
            return Frame(spec, address, entry, image)
        if spec.function not in image.entry.functions:
            near = ", ".join(sorted(f for f in image.entry.functions if not image.entry.functions[f].data)[:40])
            raise FrameError(f"{image.entry.name} has no function {spec.function} (it has: {near})")
        entry = image.address_of(spec.function)
        if spec.at_ret:
            return Frame(spec, self.space.last_ret(image, spec.function), entry, image)
        if spec.offset is not None:
            return Frame(spec, entry + spec.offset, entry, image)
        return Frame(spec, self._pick_call(image, spec.function, callee), entry, image)

    def _pick_call(self, image: MappedImage, function: str, callee: Frame | None) -> int:
        sites = self.space.call_sites(image, function)
        if not sites:
            raise FrameError(f"{image.entry.name}!{function} makes no call")
        if callee is None:
            return sites[0].return_address
        exact = [s for s in sites if callee.entry is not None and s.target == callee.entry]
        if exact:
            return exact[0].return_address
        indirect = [s for s in sites if s.target is None and s.via is None]
        if indirect:
            return indirect[0].return_address
        targets = ", ".join(sorted({self.space.describe(s.target, s.via) for s in sites}))
        raise FrameError(f"{image.entry.name}!{function} never calls {callee.spec.text} (it calls: {targets})")

    def _region(self, spec: FrameSpec) -> CodeRegion:
        region = self.space.regions.get(spec.name)
        if region is None:
            known = ", ".join(sorted(self.space.images) + sorted(self.space.regions)) or "none"
            raise FrameError(f"no module or region named '{spec.name}' in this process (known: {known})")
        return region

    # ---- layout ------------------------------------------------------------------

    def _layout(self, frames: list[Frame], stack_base: int) -> Composition:
        stack: dict[int, bytes] = {}
        regs = {name: 0 for name in NONVOLATILE}
        slot = (stack_base - STACK_TOP_PAD) & ~0xF
        slot -= 8  # the entry RSP of the outermost frame: 16n+8, as after a call
        stack[slot] = bytes(8)  # the outermost frame returns to nothing: the walk ends here
        returns = [f.address for f in frames]
        allocations: dict[int, tuple[int, int]] = {}
        for index in range(len(frames) - 1, 0, -1):
            body, top = self._enter(frames[index], slot, regs, stack, prolog_offset=None)
            allocations[index] = (body, top)
            slot = body - 8
            stack[slot] = struct.pack("<Q", frames[index].address)
        zero = frames[0]
        if zero.leaf:
            rsp = slot
            allocations[0] = (slot, slot)
        else:
            rsp, top = self._enter(zero, slot, regs, stack, prolog_offset=self._prolog_offset(zero))
            allocations[0] = (rsp, top)
        return Composition(zero.address, rsp, dict(regs), stack, returns, None, None, allocations=allocations)

    def _prolog_offset(self, frame: Frame) -> int | None:
        if frame.image is None:
            return None
        runtime = frame.image.pe.function_at(frame.address - frame.image.base)
        return None if runtime is None else frame.address - frame.image.base - runtime.begin

    def _enter(self, frame: Frame, entry_rsp: int, regs: dict[str, int], stack: dict[int, bytes],
               prolog_offset: int | None) -> tuple[int, int]:
        """Run ``frame``'s prolog on paper from ``entry_rsp``: save registers, allocate.

        Returns the body's RSP and the top of its allocation (locals, home space, outgoing arguments).
        """
        if frame.image is None:
            size = 0 if frame.leaf else UNBACKED_FRAME
            for address in range(entry_rsp - size, entry_rsp, 8):
                stack.setdefault(address, bytes(8))
            return entry_rsp - size, entry_rsp
        runtime = frame.image.pe.function_at(frame.address - frame.image.base)
        if runtime is None:
            return entry_rsp, entry_rsp  # a leaf without unwind data: nothing below its return address
        try:
            chain = _prolog_codes(frame.image, runtime.unwind, prolog_offset)
        except UnwindError as exc:
            raise ComposeError(f"'{frame.spec.text}': {exc}") from exc
        cur = entry_rsp
        top = entry_rsp
        saves: list[tuple[str, int, UnwindInfo]] = []
        fp: tuple[str, int] | None = None
        for info, code in chain:
            if code.op == UWOP_PUSH_NONVOL:
                cur -= 8
                top = cur
                stack[cur] = struct.pack("<Q", regs[REG_NAMES[code.info]])
            elif code.op in (UWOP_ALLOC_LARGE, UWOP_ALLOC_SMALL):
                cur -= code.operand
            elif code.op == UWOP_SET_FPREG:
                fp = (REG_NAMES[info.frame_register], cur + 16 * info.frame_offset)
            elif code.op in (UWOP_SAVE_NONVOL, UWOP_SAVE_NONVOL_FAR):
                saves.append((REG_NAMES[code.info], code.operand, info))
            elif code.op == UWOP_PUSH_MACHFRAME:
                raise ComposeError(f"'{frame.spec.text}' pushes a machine frame: not a caller frame")
        for name, offset, info in saves:
            base = fp[1] - 16 * info.frame_offset if fp else cur
            stack[base + offset] = struct.pack("<Q", regs[name])
            top = min(top, base + offset)
        if fp:
            regs[fp[0]] = fp[1]
        for address in range(cur, entry_rsp, 8):
            stack.setdefault(address, bytes(8))
        return cur, top

    # ---- results and the self-check -------------------------------------------------

    def _syscall_number(self, zero: Frame, syscall: int | None) -> int | None:
        if zero.image is not None and zero.leaf and zero.spec.function:
            return _stub_ssn(zero.image, zero.spec.function)
        if zero.region is not None and zero.leaf:
            return syscall
        return syscall

    def _start_address(self, frames: list[Frame]) -> int | None:
        """The routine BaseThreadInitThunk (or RtlUserThreadStart) was asked to run."""
        names = [(f.spec.function or "") for f in frames]
        for thunk in ("BaseThreadInitThunk", "RtlUserThreadStart"):
            if thunk in names:
                index = names.index(thunk)
                if index > 0:
                    return frames[index - 1].entry
        return frames[-1].entry

    def _verify(self, frames: list[Frame], comp: Composition) -> None:
        """Walk the composed stack back with the engine's unwinder; every return address must come back."""
        memory = comp.stack

        def read(address: int, size: int) -> bytes:
            out = b""
            while len(out) < size:
                base = (address + len(out)) & ~7
                chunk = memory.get(base)
                if chunk is None:
                    raise MemoryMissing(address + len(out))
                out += chunk[(address + len(out)) - base :]
            return out[:size]

        reader = StackReader(read)
        regs = Registers({"rip": comp.rip, "rsp": comp.rsp, **comp.registers})
        for index, frame in enumerate(frames):
            try:
                regs = self._unwind_one(frame, regs, reader, index == 0)
            except (UnwindError, MemoryMissing) as exc:
                raise ComposeError(f"self-check: unwinding frame {index} '{frame.spec.text}' failed: {exc}") from exc
            expected = frames[index + 1].address if index + 1 < len(frames) else 0
            if regs.rip != expected:
                raise ComposeError(
                    f"self-check: frame {index} '{frame.spec.text}' unwinds to {regs.rip:#x}, expected {expected:#x}")

    def _unwind_one(self, frame: Frame, regs: Registers, reader: StackReader, first: bool) -> Registers:
        if frame.image is not None:
            runtime = frame.image.pe.function_at(frame.address - frame.image.base)
            return virtual_unwind(frame.image.pe, frame.image.base, runtime, regs, reader, first)
        rsp = regs.rsp
        assert rsp is not None
        if not frame.leaf:
            rsp += UNBACKED_FRAME
        out = regs.copy()
        out.set("rip", reader.u64(rsp))
        out.set("rsp", rsp + 8)
        return out


# ---- helpers -----------------------------------------------------------------------------------


def _prolog_codes(image: MappedImage, unwind_rva: int, prolog_offset: int | None):
    """The unwind codes that have run, in prolog (execution) order, parents of a chain first."""
    infos = []
    info = parse_unwind_info(image.pe, unwind_rva)
    infos.append((info, prolog_offset))
    seen = {unwind_rva}
    while info.chained is not None:
        if info.chained.unwind in seen:
            raise UnwindError("chained unwind info loops")
        seen.add(info.chained.unwind)
        info = parse_unwind_info(image.pe, info.chained.unwind)
        infos.append((info, None))
    ordered = []
    for info, offset in reversed(infos):
        for code in reversed(info.codes):
            if offset is None or code.offset <= offset:
                ordered.append((info, code))
    return ordered


def _stub_ssn(image: MappedImage, function: str) -> int | None:
    """The service number of a Windows-encoded stub (``4c8bd1 b8 imm32 ... 0f05``), else None."""
    if function not in image.entry.functions:
        return None
    head = image.read(image.address_of(function), 24)
    if image.entry.bits == 64 and head[:4] == b"\x4c\x8b\xd1\xb8" and b"\x0f\x05" in head[8:]:
        return struct.unpack("<I", head[4:8])[0]
    if image.entry.bits == 32 and head[:1] == b"\xb8" and head[5:6] == b"\xba":
        return struct.unpack("<I", head[1:5])[0]
    return None


def _syscall_end(image: MappedImage, start: int) -> int:
    head = image.read(start, 32)
    if image.entry.bits == 64:
        return head.index(b"\x0f\x05", 8) + 2  # after the service number: Windows 10's stubs put it at +0x12
    return head.index(b"\xff\xd2") + 2  # 32-bit: after `call edx` into Wow64SystemServiceCall


def syscall_stub(encoding: str, ssn: int) -> bytes:
    """A direct system call in one of the encodings the seed's rule lists, then ``ret``."""
    if encoding not in SYSCALL_ENCODINGS:
        raise FrameError(f"unknown syscall encoding {encoding!r} (known: {', '.join(SYSCALL_ENCODINGS)})")
    mov_r10, eax_after = SYSCALL_ENCODINGS[encoding]
    mov_eax = b"\xb8" + struct.pack("<I", ssn)
    body = mov_r10 + mov_eax if eax_after else mov_eax + mov_r10
    return body + b"\x0f\x05\xc3"


def _call_snippet(region: CodeRegion, target: int | None) -> tuple[int, int]:
    """``sub rsp,68h; call <target>; add rsp,68h; ret`` in the region; returns (start, return address)."""
    if target is None:
        code = b"\x48\x83\xec\x68" + b"\xff\xd0" + b"\x48\x83\xc4\x68\xc3"  # call rax
        start = region.append(code)
        return start, start + 6
    if region.contains(target):
        start = region.append(bytes(16))
        rel = target - (start + 9)
        code = b"\x48\x83\xec\x68" + b"\xe8" + struct.pack("<i", rel) + b"\x48\x83\xc4\x68\xc3"
        region.data[start - region.base : start - region.base + len(code)] = code
        return start, start + 9
    code = b"\x48\x83\xec\x68" + b"\xff\x15" + struct.pack("<i", 5) + b"\x48\x83\xc4\x68\xc3" + struct.pack("<Q", target)
    start = region.append(code)
    return start, start + 10
