"""Write a full-memory x64 minidump of a hand-built process, by the documented layout.

For what no capture here can give: Wine cannot run 32-bit code on this machine, so a 64-bit
dump of a 32-bit (WOW64) process, what Task Manager writes on a real host, is written from the
genuine WOW64 stacks the forge composes. Streams: SystemInfo, ThreadList (x64 CONTEXTs),
ModuleList, Memory64List (every page the process holds) and MemoryInfoList (its regions).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from callstack_forensics.memory import PAGE_SIZE, Region, RegionKind

from .synth import SynthProcess

X64_REGS = {
    "rax": 0x78, "rcx": 0x80, "rdx": 0x88, "rbx": 0x90, "rsp": 0x98, "rbp": 0xA0,
    "rsi": 0xA8, "rdi": 0xB0, "r8": 0xB8, "r9": 0xC0, "r10": 0xC8, "r11": 0xD0,
    "r12": 0xD8, "r13": 0xE0, "r14": 0xE8, "r15": 0xF0, "rip": 0xF8,
}  # fmt: skip
CONTEXT_SIZE = 1232
CONTEXT_FLAGS = 0x10001F  # CONTEXT_AMD64 | CONTROL | INTEGER | SEGMENTS | FLOATING_POINT | DEBUG_REGISTERS
PROTECT = {"---": 0x01, "R--": 0x02, "RW-": 0x04, "--X": 0x10, "R-X": 0x20, "RWX": 0x40}
TYPES = {RegionKind.IMAGE: 0x1000000, RegionKind.MAPPED: 0x40000, RegionKind.PRIVATE: 0x20000}


@dataclass
class _File:
    data: bytearray = field(default_factory=bytearray)

    def put(self, blob: bytes, align: int = 8) -> int:
        while len(self.data) % align:
            self.data += b"\0"
        at = len(self.data)
        self.data += blob
        return at


@dataclass(frozen=True, slots=True)
class DumpThread:
    tid: int
    registers: dict[str, int]
    teb: int


def write_minidump(proc: SynthProcess, threads: list[DumpThread], build: int = 19041) -> bytes:
    out = _File(bytearray(32))
    streams = [
        (7, out.put(_system_info(build)), 56),
        _threads(out, threads),
        _modules(out, proc),
        _memory_info(out, proc.regions()),
        _memory64(out, proc),  # last: its data runs to the end of the file
    ]
    directory = out.put(b"".join(struct.pack("<III", kind, size, rva) for kind, rva, size in streams))
    struct.pack_into("<IIIIIIQ", out.data, 0, 0x504D444D, 0xA793, len(streams), directory, 0, 0x66000000, 2)
    return bytes(out.data)


def _system_info(build: int) -> bytes:
    head = struct.pack("<HHHBBIIIIIHH", 9, 6, 0x5502, 2, 1, 10, 0, build, 2, 0, 0x100, 0)
    return head + bytes(56 - len(head))


def _threads(out: _File, threads: list[DumpThread]) -> tuple[int, int, int]:
    entries = []
    for thread in threads:
        context = bytearray(CONTEXT_SIZE)
        struct.pack_into("<I", context, 0x30, CONTEXT_FLAGS)
        for name, offset in X64_REGS.items():
            struct.pack_into("<Q", context, offset, thread.registers.get(name, 0))
        rva = out.put(bytes(context), 16)
        entries.append(struct.pack("<IIIIQQIIII", thread.tid, 0, 0x20, 0, thread.teb, 0, 0, 0, CONTEXT_SIZE, rva))
    blob = struct.pack("<I", len(entries)) + b"".join(entries)
    return 3, out.put(blob), len(blob)


def _modules(out: _File, proc: SynthProcess) -> tuple[int, int, int]:
    entries = []
    for module in proc.modules():
        name = module.path.encode("utf-16-le")
        name_rva = out.put(struct.pack("<I", len(name)) + name + b"\0\0", 4)
        entries.append(struct.pack("<QIIII", module.base, module.size, 0, module.timestamp or 0, name_rva) + bytes(108 - 24))
    blob = struct.pack("<I", len(entries)) + b"".join(entries)
    return 4, out.put(blob, 4), len(blob)


def _memory_info(out: _File, regions: list[Region]) -> tuple[int, int, int]:
    entries = [struct.pack("<QQIIQIIII", r.start, r.allocation_base or r.start, PROTECT.get(r.protection, 0x02), 0,
                           r.end - r.start, 0x1000, PROTECT.get(r.protection, 0x02), TYPES.get(r.kind, 0x20000), 0)
               for r in regions]
    blob = struct.pack("<IIQ", 16, 48, len(entries)) + b"".join(entries)
    return 16, out.put(blob), len(blob)


def _memory64(out: _File, proc: SynthProcess) -> tuple[int, int, int]:
    pages = sorted(proc._pages)
    runs: list[list[int]] = []
    for page in pages:
        if runs and runs[-1][0] + runs[-1][1] == page:
            runs[-1][1] += PAGE_SIZE
        else:
            runs.append([page, PAGE_SIZE])
    head = struct.pack("<QQ", len(runs), 0) + b"".join(struct.pack("<QQ", start, size) for start, size in runs)
    at = out.put(head)
    base = out.put(b"", 16)
    struct.pack_into("<Q", out.data, at + 8, base)
    for page in pages:
        out.data += proc._pages[page]
    return 9, at, len(head)
