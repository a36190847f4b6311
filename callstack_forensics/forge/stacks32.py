"""Composing the 32-bit stack of a WOW64 thread: frame-pointer (EBP) chains, as x86 code keeps them.

x86 has no unwind tables; the 32-bit modules are built with frame pointers,
so every caller's frame starts ``push ebp; mov ebp, esp`` and the walk follows
``[ebp]``/``[ebp+4]``. Frame 0, a 32-bit ntdll stub, has no frame: its caller's
return address is at ``[esp]``. Call sites are chosen as for 64-bit stacks.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import capstone

from .codespace import CodeRegion, CodeSpace, FrameError, FrameSpec
from .modules import MappedImage
from .stacks import ComposeError, _stub_ssn, _syscall_end

STACK_TOP_PAD = 0x20


@dataclass(slots=True)
class Frame32:
    spec: FrameSpec
    address: int
    entry: int | None
    image: MappedImage | None = None
    region: CodeRegion | None = None
    leaf: bool = False


@dataclass(slots=True)
class Composition32:
    eip: int
    esp: int
    ebp: int
    stack: dict[int, bytes]
    return_addresses: list[int]
    start_address: int | None
    labels: list[str] = field(default_factory=list)


class StackComposer32:
    def __init__(self, space: CodeSpace) -> None:
        self.space = space
        self._cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_32)

    def compose(self, names: list[str], stack_base: int, in_syscall: bool = True) -> Composition32:
        specs = [FrameSpec.parse(n) for n in names]
        frames: list[Frame32] = []
        for index, spec in enumerate(specs):
            try:
                frames.append(self._frame(spec, frames[-1] if frames else None, in_syscall))
            except FrameError as exc:
                raise ComposeError(f"32-bit frame {index} '{spec.text}': {exc}") from exc
        comp = self._layout(frames, stack_base)
        comp.start_address = _start(frames)
        comp.labels = list(names)
        self._verify(frames, comp)
        return comp

    def _frame(self, spec: FrameSpec, callee: Frame32 | None, in_syscall: bool) -> Frame32:
        image = self.space.image_named(spec.name)
        if image is not None:
            if spec.function is None:
                if spec.offset is None:
                    raise FrameError(f"name a function ({spec.name}!Function) or an offset")
                name = self.space.function_containing(image, spec.offset)
                return Frame32(spec, image.base + spec.offset, image.address_of(name) if name else None, image)
            entry = image.address_of(spec.function)
            if spec.offset is not None:
                return Frame32(spec, entry + spec.offset, entry, image)
            if callee is None and in_syscall and _stub_ssn(image, spec.function) is not None:
                return Frame32(spec, entry + _syscall_end(image, entry), entry, image, leaf=True)
            return Frame32(spec, self._pick(image, spec.function, callee), entry, image)
        region = self.space.regions.get(spec.name)
        if region is None:
            raise FrameError(f"no 32-bit module or region named '{spec.name}'")
        if spec.offset is not None:
            return Frame32(spec, region.base + spec.offset, None, region=region)
        if callee is None:
            start = region.append(b"\xf3\x90\xeb\xfc")
            return Frame32(spec, start, start, region=region)
        target = callee.entry if callee.entry is not None else 0
        code = b"\x55\x89\xe5" + b"\xff\x15" + b"\0\0\0\0" + b"\xc9\xc3" + b"\0\0\0"
        start = region.append(code + struct.pack("<I", target), align=0x10)
        slot = start + len(code)
        offset = start - region.base
        region.data[offset + 5 : offset + 9] = struct.pack("<I", slot)
        return Frame32(spec, start + 9, start, region=region)

    def _pick(self, image: MappedImage, function: str, callee: Frame32 | None) -> int:
        sites = self.space.call_sites(image, function)
        if not sites:
            raise FrameError(f"{image.entry.name}!{function} makes no call")
        if callee is None:
            return sites[0].return_address
        for site in sites:
            if callee.entry is not None and site.target == callee.entry:
                return site.return_address
        for site in sites:
            if site.target is None and site.via is None:
                return site.return_address
        targets = ", ".join(sorted({self.space.describe(s.target, s.via) for s in sites}))
        raise FrameError(f"{image.entry.name}!{function} never calls {callee.spec.text} (it calls: {targets})")

    def _prologue(self, frame: Frame32) -> int:
        """Bytes below the saved EBP at the call: pushed registers and `sub esp, n` of the prologue."""
        if frame.entry is None or (frame.image is None and frame.region is None):
            return 0
        code = self.space.read(frame.entry, 32)
        extra, seen_frame = 0, False
        for insn in self._cs.disasm(code, frame.entry):
            if insn.mnemonic == "push" and insn.op_str == "ebp" and not seen_frame:
                continue
            if insn.mnemonic == "mov" and insn.op_str == "ebp, esp":
                seen_frame = True
                continue
            if insn.mnemonic == "push" and insn.op_str in ("ebx", "esi", "edi"):
                extra += 4
                continue
            if insn.mnemonic == "sub" and insn.op_str.startswith("esp, "):
                extra += int(insn.op_str.split(", ")[1], 0)
                continue
            break
        if not seen_frame:
            raise ComposeError(f"'{frame.spec.text}' does not keep a frame pointer (push ebp; mov ebp, esp)")
        return extra

    def _layout(self, frames: list[Frame32], stack_base: int) -> Composition32:
        stack: dict[int, bytes] = {}
        esp = (stack_base - STACK_TOP_PAD) & ~0xF
        esp -= 4
        stack[esp] = bytes(4)
        ebp = 0
        for index in range(len(frames) - 1, 0, -1):
            frame = frames[index]
            stack[esp - 4] = struct.pack("<I", ebp)   # push ebp
            ebp = esp - 4                              # mov ebp, esp
            body = ebp - self._prologue(frame)
            for address in range(body, ebp, 4):
                stack.setdefault(address, bytes(4))
            esp = body - 4
            stack[esp] = struct.pack("<I", frame.address)  # the call's return address
        return Composition32(frames[0].address, esp, ebp, stack, [f.address for f in frames], None)

    def _verify(self, frames: list[Frame32], comp: Composition32) -> None:
        def u32(address: int) -> int:
            if address not in comp.stack:
                raise ComposeError(f"self-check: 32-bit stack has nothing at {address:#x}")
            return struct.unpack("<I", comp.stack[address])[0]

        got = [comp.eip, u32(comp.esp)]
        ebp = comp.ebp
        while len(got) < len(frames) + 1 and ebp:
            got.append(u32(ebp + 4))
            ebp = u32(ebp)
        expected = [f.address for f in frames] + [0]
        if got[: len(expected)] != expected:
            raise ComposeError(f"self-check: 32-bit walk gives {[hex(a) for a in got]}, expected "
                               f"{[hex(a) for a in expected]}")


def _start(frames: list[Frame32]) -> int | None:
    names = [(f.spec.function or "") for f in frames]
    for thunk in ("BaseThreadInitThunk", "RtlUserThreadStart"):
        if thunk in names and names.index(thunk) > 0:
            return frames[names.index(thunk) - 1].entry
    return frames[-1].entry
