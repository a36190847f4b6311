"""Where code lives in one forged process: mapped modules and scenario regions, and how to name it.

The stack composer resolves frame names (``kernel32.dll!CreateProcessW``,
``ntdll.dll+0x1a2b``, ``payload+0x40``, ``Unbacked:payload``) here, and
disassembles functions to find their call sites.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

import capstone

from .modules import MappedImage

_FRAME = re.compile(
    r"^(?:(?P<unbacked>unbacked|unknown):)?(?P<name>[^!+]+?)(?:!(?P<function>[^+]+))?(?:\+(?P<offset>0x[0-9a-f]+|\d+))?$",
    re.IGNORECASE,
)


class FrameError(Exception):
    """A frame name that does not resolve to code in the process."""


@dataclass(frozen=True, slots=True)
class FrameSpec:
    """A parsed frame name."""

    text: str
    name: str                 # module or region name
    function: str | None
    offset: int | None
    at_ret: bool = False      # module!Function@ret: the function's final `ret` (a gadget, not after a call)

    @classmethod
    def parse(cls, text: str) -> "FrameSpec":
        body = text.strip()
        at_ret = body.lower().endswith("@ret")
        if at_ret:
            body = body[:-4]
        match = _FRAME.match(body)
        if not match:
            raise FrameError(f"cannot read frame '{text}' (expected module!Function, module!Function@ret, "
                             "module+0xRVA or region+0xOFF)")
        offset = match.group("offset")
        return cls(text, match.group("name").strip(), match.group("function"),
                   int(offset, 0) if offset is not None else None, at_ret)


@dataclass
class CodeRegion:
    """A scenario region in one process; code the composer generates is appended to it."""

    name: str
    base: int
    size: int
    data: bytearray
    executable: bool
    cursor: int = 0x40
    bits: int = 64

    def contains(self, address: int) -> bool:
        return self.base <= address < self.base + self.size

    def append(self, code: bytes, align: int = 0x10) -> int:
        """Place ``code`` at the next free aligned offset; returns its address."""
        offset = (self.cursor + align - 1) & ~(align - 1)
        if offset + len(code) > self.size:
            raise FrameError(f"region '{self.name}' ({self.size:#x} bytes) is too small for the code the stacks need")
        if len(self.data) < offset + len(code):
            self.data.extend(bytes(offset + len(code) - len(self.data)))
        self.data[offset : offset + len(code)] = code
        self.cursor = offset + len(code)
        return self.base + offset


@dataclass(frozen=True, slots=True)
class CallSiteInfo:
    return_address: int
    target: int | None   # None: through a register or an unresolvable pointer
    via: str | None = None  # "kernelbase.dll!WaitForSingleObjectEx" for a call through an import slot


@dataclass
class CodeSpace:
    """The modules and regions of one process (one bitness: x64 or the 32-bit half of WOW64)."""

    images: dict[str, MappedImage]          # by lower-case module name
    regions: dict[str, CodeRegion] = field(default_factory=dict)
    bits: int = 64

    def image_named(self, name: str) -> MappedImage | None:
        return self.images.get(name.lower())

    def image_at(self, address: int) -> MappedImage | None:
        return next((img for img in self.images.values() if img.contains(address)), None)

    def region_at(self, address: int) -> CodeRegion | None:
        return next((r for r in self.regions.values() if r.contains(address)), None)

    def read(self, address: int, size: int) -> bytes:
        image = self.image_at(address)
        if image is not None:
            return image.read(address, size)
        region = self.region_at(address)
        if region is not None:
            offset = address - region.base
            chunk = bytes(region.data[offset : offset + size])
            return chunk + bytes(size - len(chunk))
        raise FrameError(f"no code at {address:#x}")

    def pointer(self, address: int) -> int | None:
        size = self.bits // 8
        try:
            return int.from_bytes(self.read(address, size), "little")
        except FrameError:
            return None

    # ---- functions ----------------------------------------------------------

    def function_bounds(self, image: MappedImage, rva: int) -> tuple[int, int]:
        """[begin, end) RVAs of the function holding ``rva``: from .pdata, else up to the next symbol."""
        if image.entry.bits == 64:
            runtime = image.pe.function_at(rva)
            if runtime is not None:
                return runtime.begin, runtime.end
        starts = sorted(f.rva for f in image.entry.functions.values() if not f.data)
        begin = max((s for s in starts if s <= rva), default=rva)
        end = min((s for s in starts if s > begin), default=image.size)
        return begin, end

    def function_containing(self, image: MappedImage, rva: int) -> str | None:
        best = None
        for function in image.entry.functions.values():
            if not function.data and function.rva <= rva and (best is None or function.rva > best.rva):
                best = function
        return best.name if best else None

    def call_sites(self, image: MappedImage, function: str) -> list[CallSiteInfo]:
        begin, end = self.function_bounds(image, image.entry.functions[function].rva)
        code = image.read(image.base + begin, end - begin)
        return self.decode_calls(code, image.base + begin)

    def last_ret(self, image: MappedImage, function: str) -> int:
        """Address of the function's last `ret` instruction."""
        begin, end = self.function_bounds(image, image.entry.functions[function].rva)
        mode = capstone.CS_MODE_64 if self.bits == 64 else capstone.CS_MODE_32
        cs = capstone.Cs(capstone.CS_ARCH_X86, mode)
        rets = [i.address for i in cs.disasm(image.read(image.base + begin, end - begin), image.base + begin)
                if i.mnemonic == "ret"]
        if not rets:
            raise FrameError(f"{image.entry.name}!{function} has no ret instruction")
        return rets[-1]

    def decode_calls(self, code: bytes, address: int) -> list[CallSiteInfo]:
        mode = capstone.CS_MODE_64 if self.bits == 64 else capstone.CS_MODE_32
        cs = capstone.Cs(capstone.CS_ARCH_X86, mode)
        sites = []
        for insn in cs.disasm(code, address):
            if insn.mnemonic != "call":
                continue
            ret = insn.address + insn.size
            slot = self._slot(insn, ret)
            target = self._call_target(insn, ret)
            sites.append(CallSiteInfo(ret, target, self._import_at(slot) if slot is not None else None))
        return sites

    def _slot(self, insn, ret: int) -> int | None:
        match = re.fullmatch(r"(?:qword|dword) ptr \[rip \+ (0x[0-9a-f]+)\]", insn.op_str)
        if match:
            return ret + int(match.group(1), 16)
        match = re.fullmatch(r"dword ptr \[(0x[0-9a-f]+)\]", insn.op_str)
        return int(match.group(1), 16) if match else None

    def _import_at(self, slot: int) -> str | None:
        image = self.image_at(slot)
        if image is None:
            return None
        for dll, function, rva in image.imports:
            if image.base + rva == slot:
                return f"{dll}!{function}"
        return None

    def _call_target(self, insn, ret: int) -> int | None:
        raw = bytes(insn.bytes)
        if raw[0] == 0xE8:
            return (ret + struct.unpack("<i", raw[1:5])[0]) & ((1 << self.bits) - 1)
        op = insn.op_str
        match = re.fullmatch(r"(?:qword|dword) ptr \[rip \+ (0x[0-9a-f]+)\]", op)
        if match:
            return self.pointer(ret + int(match.group(1), 16))
        match = re.fullmatch(r"dword ptr \[(0x[0-9a-f]+)\]", op)
        if match:
            return self.pointer(int(match.group(1), 16))
        return None

    def describe(self, address: int | None, via: str | None = None) -> str:
        if via is not None and (address is None or self.image_at(address) is None):
            return f"{via} (not loaded in this process)"
        if address is None:
            return "a register"
        image = self.image_at(address)
        if image is not None:
            name = self.function_containing(image, address - image.base)
            return f"{image.entry.name}!{name}" if name else f"{image.entry.name}+{address - image.base:#x}"
        region = self.region_at(address)
        if region is not None:
            return f"{region.name}+{address - region.base:#x}"
        return f"{address:#x}"
