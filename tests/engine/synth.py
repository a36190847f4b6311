"""Hand-built images and processes for unit tests of what compilers here never emit.

An image is laid out by RVA: code at 0x1000, UNWIND_INFO records at 0x3000; the
``.pdata`` entries are given directly. A process maps byte strings at addresses.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from callstack_forensics.memory import (
    PAGE_SIZE,
    MemoryMissing,
    Module,
    ProcessInfo,
    ProcessMemory,
    Region,
    RegionKind,
    ThreadInfo,
)
from callstack_forensics.engine.pe import PeImage, RuntimeFunction, Section

CODE_RVA = 0x1000
UNWIND_RVA = 0x3000


def unwind_info(
    codes: list[tuple[int, int, int]],
    extra_slots: list[int] | None = None,
    version: int = 1,
    flags: int = 0,
    prolog: int = 0,
    frame_reg: int = 0,
    frame_off: int = 0,
    chained: tuple[int, int, int] | None = None,
) -> bytes:
    """UNWIND_INFO bytes. ``codes``: (offset, op, info) slots; operand slots are given
    as ``(None, value, None)`` entries, i.e. a raw 16-bit slot."""
    slots = []
    for c in codes:
        if c[0] is None:
            slots.append(c[1] & 0xFFFF)
        else:
            offset, op, info = c
            slots.append(offset | (op << 8) | (info << 12))
    if chained:
        flags |= 4
    head = bytes([version | (flags << 3), prolog, len(slots), frame_reg | (frame_off << 4)])
    body = struct.pack(f"<{len(slots)}H", *slots)
    if len(slots) & 1:
        body += b"\0\0"
    if chained:
        body += struct.pack("<III", *chained)
    return head + body


@dataclass
class SynthImage:
    code: bytes
    functions: list[tuple[int, int, bytes]]  # (begin rva, end rva, unwind info bytes)
    exports: list[tuple[str, int]] = field(default_factory=list)

    def build(self) -> tuple[bytes, PeImage]:
        buf = bytearray(0x5000)
        buf[CODE_RVA : CODE_RVA + len(self.code)] = self.code
        rfs = []
        cur = UNWIND_RVA
        for begin, end, info in self.functions:
            buf[cur : cur + len(info)] = info
            rfs.append(RuntimeFunction(begin, end, cur))
            cur += (len(info) + 3) & ~3
        data = bytes(buf)

        def read(rva: int, n: int) -> bytes:
            if rva < 0 or rva + n > len(data):
                raise MemoryMissing(rva)
            return data[rva : rva + n]

        from callstack_forensics.engine.pe import Export

        image = PeImage(
            reader=read,
            size_of_image=len(data),
            timestamp=0,
            machine=0x8664,
            is_64=True,
            sections=[Section(".text", CODE_RVA, 0x2000, 0x60000020), Section(".rdata", UNWIND_RVA, 0x2000, 0x40000040)],
        )
        rfs.sort(key=lambda f: f.begin)
        image._rf = rfs
        image._rf_begins = [f.begin for f in rfs]
        image.exports = sorted((Export(n, r, i) for i, (n, r) in enumerate(self.exports)), key=lambda e: e.rva)
        image._export_rvas = [e.rva for e in image.exports]
        return data, image


class SynthProcess(ProcessMemory):
    """A sparse address space: byte strings mapped at addresses, pages outside absent."""

    def __init__(self, pid: int = 100, name: str = "synth.exe") -> None:
        self.process = ProcessInfo(pid, name)
        self._pages: dict[int, bytearray] = {}
        self._regions: list[Region] = []
        self._modules: list[Module] = []
        self._threads: list[ThreadInfo] = []

    def map(self, address: int, data: bytes, protection: str = "RW-", kind: RegionKind = RegionKind.PRIVATE, path: str | None = None) -> None:
        start = address & ~(PAGE_SIZE - 1)
        end = (address + len(data) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        for page in range(start, end, PAGE_SIZE):
            self._pages.setdefault(page, bytearray(PAGE_SIZE))
        cur = address
        view = memoryview(data)
        while view:
            page = cur & ~(PAGE_SIZE - 1)
            off = cur - page
            n = min(len(view), PAGE_SIZE - off)
            self._pages[page][off : off + n] = view[:n]
            view = view[n:]
            cur += n
        self._regions.append(Region(start, end, protection, kind, path, start))

    def unmap_page(self, page: int) -> None:
        self._pages.pop(page, None)

    def add_module(self, module: Module) -> None:
        self._modules.append(module)

    def add_thread(self, thread: ThreadInfo) -> None:
        self._threads.append(thread)

    def write_u64(self, address: int, value: int) -> None:
        page = address & ~(PAGE_SIZE - 1)
        self._pages[page][address - page : address - page + 8] = struct.pack("<Q", value)

    def read(self, address: int, size: int) -> bytes:
        out = bytearray()
        cur = address
        while len(out) < size:
            page = cur & ~(PAGE_SIZE - 1)
            data = self._pages.get(page)
            if data is None:
                raise MemoryMissing(cur)
            take = min(size - len(out), PAGE_SIZE - (cur - page))
            out += data[cur - page : cur - page + take]
            cur += take
        return bytes(out)

    def regions(self):
        return sorted(self._regions, key=lambda r: r.start)

    def modules(self):
        return sorted(self._modules, key=lambda m: m.base)

    def threads(self):
        return list(self._threads)
