"""CONTEXT records of sleep obfuscation, found in a process's private memory.

Ekko, Foliage and their kin sleep by queueing timer callbacks that run ``NtContinue`` on
prepared CONTEXT records: one makes the implant RW (``VirtualProtect``), one encrypts it with
RC4 (``advapi32!SystemFunction032``), one waits (``WaitForSingleObjectEx``), then the same in
reverse. Those records sit in private memory (the implant's stack or heap) for the whole sleep:
an x64 CONTEXT whose RIP is one of those functions and whose RSP lies in one of the process's
thread stacks. Patriot looks for them on a live host; here they are looked for in the snapshot.

The scan is cheap: a page is searched for the eight bytes of each target function's address
only when a target can sit at a CONTEXT's RIP offset there (a byte filter, then a set test:
``RipValues``), and only where one does is the record checked (ContextFlags, RSP). Pages a
source does not hold are skipped, never read as zeros.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from ..engine.context import ProcessContext
from ..memory import PAGE_SIZE, MemoryMissing, RegionKind, ThreadInfo

CONTEXT_RIP = 0xF8
CONTEXT_RSP = 0x98
CONTEXT_FLAGS = 0x30
CONTEXT_AMD64 = 0x00100000
# CONTEXT_CONTROL | INTEGER | SEGMENTS | FLOATING_POINT | DEBUG_REGISTERS | XSTATE, and the
# exception-reporting bits Windows sets in records it hands out
KNOWN_FLAG_BITS = CONTEXT_AMD64 | 0x7F | 0x08000000 | 0x04000000 | 0x20000000 | 0x40000000 | 0x80000000
# The functions a sleep-obfuscation chain runs through NtContinue, by module.
TARGETS: dict[str, tuple[str, ...]] = {
    "ntdll.dll": ("NtContinue", "ZwContinue", "NtProtectVirtualMemory", "NtWaitForSingleObject",
                  "NtDelayExecution", "RtlCopyMemory", "NtSignalAndWaitForSingleObject"),
    "kernelbase.dll": ("VirtualProtect", "VirtualProtectEx", "WaitForSingleObject", "WaitForSingleObjectEx"),
    "kernel32.dll": ("VirtualProtect", "VirtualProtectEx", "WaitForSingleObject", "WaitForSingleObjectEx"),
    "advapi32.dll": ("SystemFunction032", "SystemFunction033"),
    "cryptsp.dll": ("SystemFunction032", "SystemFunction033"),
}
MAX_SCAN_BYTES = 256 << 20  # per process: past this the scan stops and says so


@dataclass(frozen=True, slots=True)
class ContextRecord:
    """A CONTEXT in private memory that would run ``symbol`` on a thread's stack."""

    address: int
    rip: int
    symbol: str
    rsp: int
    tid: int
    region: str

    def to_ecs(self) -> dict[str, Any]:
        return {"address": f"{self.address:#x}", "rip": f"{self.rip:#x}", "rip_symbol": self.symbol,
                "rsp": f"{self.rsp:#x}", "region": self.region}


@dataclass(slots=True)
class ContextScan:
    records: list[ContextRecord]
    note: str | None = None


def find_context_records(ctx: ProcessContext, threads: Sequence[ThreadInfo]) -> ContextScan:
    """Every CONTEXT record of the process aimed at a sleep-obfuscation target."""
    targets = _targets(ctx)
    stacks = [(t.tid, t.stack_limit, t.stack_base) for t in threads if t.stack_base and t.stack_limit is not None]
    if not targets or not stacks:
        return ContextScan([])
    records: list[ContextRecord] = []
    values = RipValues.of(struct.unpack("<Q", pattern)[0] for pattern in targets)
    scanned = 0
    for region in ctx.memory.regions():
        if region.kind is not RegionKind.PRIVATE or "R" not in region.protection[:1]:
            continue
        for page in _present_pages(ctx, region):
            if scanned >= MAX_SCAN_BYTES:
                return ContextScan(records, f"CONTEXT-record scan stopped after {MAX_SCAN_BYTES >> 20} MiB of private memory")
            data = _page(ctx, page)
            if data is None:
                continue
            scanned += PAGE_SIZE
            records += _records_in(ctx, page, data, targets, stacks, region, values)
    return ContextScan(records)


def _present_pages(ctx: ProcessContext, region) -> Iterable[int]:
    """The region's pages the source may hold: private regions are mostly reserved and never
    committed, and trying each of their pages was most of a whole run's time."""
    for low, high in ctx.memory.present_ranges(region.start, region.end):
        yield from range(max(low, region.start), min(high, region.end), PAGE_SIZE)


def _targets(ctx: ProcessContext) -> dict[bytes, str]:
    out: dict[bytes, str] = {}
    for module in ctx.memory.modules():
        names = TARGETS.get(module.name.lower())
        image = ctx.image_of(module) if names else None
        if image is None:
            continue
        for export in image.exports:
            if export.name in names:
                key = struct.pack("<Q", module.base + export.rva)
                if key not in out or export.name.startswith("Nt"):  # NtX and ZwX are one stub: say Nt
                    out[key] = f"{module.name.lower()}!{export.name}"
    return out


def _page(ctx: ProcessContext, page: int) -> bytes | None:
    held = ctx.cache.peek(page)  # a stack page the walks read a moment ago: read once
    if held is not None:
        return held or None
    try:
        return ctx.memory.read(page, PAGE_SIZE)
    except MemoryMissing:
        return None
    except Exception:  # a hostile source: this page is unreadable, the scan goes on
        return None


@dataclass(frozen=True, slots=True)
class RipValues:
    """The targets' addresses, and for each of their six low bytes which values they take: what
    tells at once that a page holds none of them where a record's RIP would lie.

    Why: the plain test takes every other qword of the page as a Python int (~7 us a page), and
    an added thread brings two stack pages no walk kept. A target at a RIP offset has each of
    its low six bytes among those the targets take at that byte; the page's bytes at that
    position, one slice per byte (in C), mapped through a table of the allowed values and
    and-ed together as integers, are zero when no position passes all six. Stack pages are full
    of return addresses into the very modules the targets are in, but those share only the
    targets' high bytes, so almost every page is ruled out there (~1.7 us); the few that pass
    take the plain test, and the answer is always the plain test's."""

    values: frozenset[int]
    tables: tuple[bytes, ...]

    @classmethod
    def of(cls, values: Iterable[int]) -> "RipValues":
        kept = frozenset(values)
        tables = []
        for k in range(_FILTERED_BYTES):
            table = bytearray(256)
            for value in kept:
                table[(value >> (8 * k)) & 0xFF] = 1
            tables.append(bytes(table))
        return cls(kept, tuple(tables))


_FILTERED_BYTES = 6  # a user-mode address's top two bytes are zero: they would rule nothing out


def _may_hold_record(data: bytes, targets: RipValues) -> bool:
    """Does any target sit where a 16-aligned CONTEXT's RIP would (offset 8 mod 16 of the page)?
    Almost no page holds one, and those that do are searched for every target."""
    if len(data) != PAGE_SIZE:
        return True
    values = targets.values
    if data == _ZERO_PAGE:  # a committed page never written (much of a stack): one answer, at once
        return 0 in values
    passing = -1
    for k, table in enumerate(targets.tables):
        passing &= int.from_bytes(data[CONTEXT_RIP % 16 + k::16].translate(table), "little")
        if not passing:
            return False
    return not values.isdisjoint(memoryview(data).cast("Q")[1::2])


_ZERO_PAGE = bytes(PAGE_SIZE)


def _records_in(ctx: ProcessContext, page: int, data: bytes, targets: dict[bytes, str],
                stacks: list[tuple[int, int, int]], region,
                values: RipValues | None = None) -> Iterable[ContextRecord]:
    if values is not None and not _may_hold_record(data, values):
        return
    for pattern, symbol in targets.items():
        at = data.find(pattern)
        while at != -1:
            start = page + at - CONTEXT_RIP
            if start % 16 == 0:
                record = _record(ctx, start, symbol, stacks, region)
                if record is not None:
                    yield record
            at = data.find(pattern, at + 1)


def _record(ctx: ProcessContext, start: int, symbol: str, stacks: list[tuple[int, int, int]],
            region) -> ContextRecord | None:
    try:
        head = ctx.memory.read(start + CONTEXT_FLAGS, 4)
        rsp_raw = ctx.memory.read(start + CONTEXT_RSP, 8)
        rip_raw = ctx.memory.read(start + CONTEXT_RIP, 8)
    except Exception:
        return None
    (flags,) = struct.unpack("<I", head)
    if not flags & CONTEXT_AMD64 or flags & ~KNOWN_FLAG_BITS or not flags & 0x1:  # CONTEXT_CONTROL holds RIP/RSP
        return None
    (rsp,) = struct.unpack("<Q", rsp_raw)
    (rip,) = struct.unpack("<Q", rip_raw)
    owner = next((tid for tid, low, high in stacks if low - 0x3000 <= rsp < high), None)
    if owner is None:
        return None
    return ContextRecord(start, rip, symbol, rsp, owner, f"{region.kind.value} {region.protection}")
