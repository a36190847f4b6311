"""Check 10, second half: a PE image in private memory (reflective loading).

A reflective loader maps a DLL by hand: it allocates private memory, copies the sections to
their RVAs, relocates, and calls the entry point; the loader never hears of it, so no loader
entry and no image VAD name it. The image often keeps its MZ/PE header; careful loaders wipe
it. Like pe-sieve and Moneta, this looks at private allocations that hold executable memory:

- a header: ``MZ`` and a ``PE\\0\\0`` signature at a page start of the allocation;
- no header: the image's exception directory (``.pdata``) still lies at its RVA, an array of
  RUNTIME_FUNCTION entries relative to the allocation's base: sorted, non-overlapping
  functions inside the allocation whose UnwindData are plausible UNWIND_INFO records
  (version 1 or 2, flags and prolog in range). Compilers emit one per non-leaf function, so a
  mapped x64 image has dozens; JIT heaps and shellcode have none or a handful, and a run
  of fewer than :data:`MIN_RUNTIME_FUNCTIONS` is not taken for an image.

Only memory the source holds is read: an allocation whose pages are missing is not one.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Any

from ...engine.context import ProcessContext
from ...memory import PAGE_SIZE, Region, RegionKind

MIN_RUNTIME_FUNCTIONS = 8
SCAN_LIMIT = 4 << 20  # bytes of one allocation searched for a wiped image's .pdata
HEADER_PAGES = 64  # page starts of one allocation checked for an MZ/PE header
PE_MACHINES = {0x8664: "x64", 0x14C: "x86", 0xAA64: "arm64"}
# A DWORD in 1..0xFFFFFF (an RVA inside a 16 MiB image): the C-speed prefilter for .pdata runs.
_RVA = rb"(?:[^\x00][\x00-\xff]{2}|\x00[^\x00][\x00-\xff]|\x00\x00[^\x00])\x00"
_RUN = re.compile(rb"(?=(?:" + _RVA * 3 + rb"){%d})" % MIN_RUNTIME_FUNCTIONS, re.S)


@dataclass(frozen=True, slots=True)
class PrivatePe:
    """A PE image found in a private allocation, and how it was recognised."""

    allocation_base: int
    allocation_size: int
    protection: str  # the allocation's executable protection (RWX, R-X...)
    found_by: str  # "header" or "pdata"
    header_address: int | None
    machine: str | None
    size_of_image: int | None
    runtime_functions: int | None
    pdata_address: int | None
    start_bytes: bytes

    @property
    def header_wiped(self) -> bool:
        return self.found_by == "pdata"

    def to_ecs(self) -> dict[str, Any]:
        pe: dict[str, Any] = {"found_by": self.found_by, "header_wiped": self.header_wiped}
        for key, value in (("header_address", self.header_address), ("pdata_address", self.pdata_address)):
            if value is not None:
                pe[key] = f"{value:#x}"
        for key, value in (("machine", self.machine), ("size_of_image", self.size_of_image),
                           ("runtime_functions", self.runtime_functions)):
            if value is not None:
                pe[key] = value
        return {"allocation_base": f"{self.allocation_base:#x}", "allocation_size": self.allocation_size,
                "allocation_type": "PRIVATE", "region_protection": self.protection,
                "region_start_bytes": self.start_bytes.hex(), "memory_pe_detected": True, "memory_pe": pe}

    def describe(self) -> str:
        if self.found_by == "header":
            return (f"a PE image ({self.machine or 'unknown machine'}, MZ/PE header at {self.header_address:#x}, "
                    f"SizeOfImage {self.size_of_image or 0:#x}) in private {self.protection} memory at "
                    f"{self.allocation_base:#x}")
        return (f"a PE image with its header wiped in private {self.protection} memory at {self.allocation_base:#x}: "
                f"{self.runtime_functions} RUNTIME_FUNCTION entries at {self.pdata_address:#x} describe functions "
                f"inside the allocation")


def private_allocations(ctx: ProcessContext) -> dict[int, list[Region]]:
    """Private regions grouped by allocation, for the allocations that hold executable memory."""
    groups: dict[int, list[Region]] = {}
    for region in ctx.memory.regions():
        if region.kind != RegionKind.PRIVATE:
            continue
        base = region.allocation_base if region.allocation_base is not None else region.start
        groups.setdefault(base, []).append(region)
    return {base: parts for base, parts in groups.items() if any(p.executable for p in parts)}


def private_pes(ctx: ProcessContext) -> list[PrivatePe]:
    out = []
    for base, parts in sorted(private_allocations(ctx).items()):
        found = find_pe(ctx, base, parts)
        if found is not None:
            out.append(found)
    return out


def find_pe(ctx: ProcessContext, base: int, parts: list[Region]) -> PrivatePe | None:
    end = max(p.end for p in parts)
    protection = next(p.protection for p in parts if p.executable)
    start = ctx.memory.read_partial(base, 32)
    for page in range(base, min(end, base + HEADER_PAGES * PAGE_SIZE), PAGE_SIZE):
        header = _pe_header(ctx, page)
        if header is not None:
            machine, size = header
            return PrivatePe(base, end - base, protection, "header", page, machine, size, None, None, start)
    run = _pdata_run(ctx, base, min(end, base + SCAN_LIMIT))
    if run is None:
        return None
    offset, count = run
    return PrivatePe(base, end - base, protection, "pdata", None, "x64", None, count, base + offset, start)


def _pe_header(ctx: ProcessContext, page: int) -> tuple[str | None, int] | None:
    """(machine, SizeOfImage) when ``page`` starts with an MZ header whose PE signature checks."""
    head = ctx.memory.read_partial(page, 0x400)
    if head[:2] != b"MZ" or len(head) < 0x40:
        return None
    (e_lfanew,) = struct.unpack_from("<I", head, 0x3C)
    if e_lfanew < 0x40 or e_lfanew + 0x58 > len(head) or head[e_lfanew : e_lfanew + 4] != b"PE\0\0":
        return None
    (machine,) = struct.unpack_from("<H", head, e_lfanew + 4)
    (size,) = struct.unpack_from("<I", head, e_lfanew + 0x18 + 0x38)
    return PE_MACHINES.get(machine), size


def _pdata_run(ctx: ProcessContext, base: int, end: int) -> tuple[int, int] | None:
    """The longest run of plausible RUNTIME_FUNCTION entries (RVAs from ``base``) in the
    allocation's present pages: (offset from base, entries), or None below the minimum."""
    data = _present(ctx, base, end)
    size = end - base
    best: tuple[int, int] | None = None
    skip_to = 0
    for match in _RUN.finditer(data):
        offset = match.start()
        if offset % 4 or offset < skip_to:
            continue
        count = _entries_at(ctx, base, data, offset, size)
        if count >= MIN_RUNTIME_FUNCTIONS:
            skip_to = offset + 12 * count
            if best is None or count > best[1]:
                best = (offset, count)
    return best


def _entries_at(ctx: ProcessContext, base: int, data: bytes, offset: int, size: int) -> int:
    count, previous_end = 0, PAGE_SIZE
    while offset + 12 <= len(data):
        begin, end, unwind = struct.unpack_from("<III", data, offset)
        if not (previous_end <= begin < end <= size and unwind < size):
            break
        if not unwind & 1 and not _unwind_info(data, unwind, end - begin):
            break
        if ctx.code_state(base + begin) is False:
            break
        count, previous_end, offset = count + 1, end, offset + 12
    return count


def _unwind_info(data: bytes, at: int, length: int) -> bool:
    """A plausible UNWIND_INFO at ``at``: DWORD-aligned, version 1 or 2, known flags, a prolog
    no longer than the function, and its unwind codes inside the allocation."""
    if at % 4 or at + 4 > len(data):
        return False
    version_flags, prolog, codes, _frame = data[at : at + 4]
    return version_flags & 7 in (1, 2) and version_flags >> 3 <= 7 and prolog <= min(length, 0xFF) \
        and at + 4 + 2 * codes <= len(data) and (codes > 0 or prolog == 0)


def _present(ctx: ProcessContext, base: int, end: int) -> bytes:
    """The allocation's bytes, absent pages as zeros (no entry can be read from zeros)."""
    out = bytearray()
    for page in range(base, end, PAGE_SIZE):
        out += ctx.memory.read_partial(page, PAGE_SIZE).ljust(PAGE_SIZE, b"\0")
    return bytes(out)
