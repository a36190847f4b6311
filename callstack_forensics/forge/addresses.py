"""Choosing free user-mode addresses in one process: first fit, 64 KiB granularity, around what is fixed."""

from __future__ import annotations

from dataclasses import dataclass, field

GRANULARITY = 0x10000


class AddressSpaceFull(Exception):
    """No free range of the requested size is left where the allocator looks."""


@dataclass
class VaAllocator:
    """Hands out ranges from ``start`` up to ``limit``, skipping reserved ranges (modules, fixed regions)."""

    start: int
    limit: int
    reserved: list[tuple[int, int]] = field(default_factory=list)  # [start, end)
    cursor: int = 0

    def __post_init__(self) -> None:
        self.cursor = self.cursor or self.start

    def reserve(self, start: int, size: int, what: str = "") -> None:
        end = start + size
        for lo, hi in self.reserved:
            if start < hi and lo < end:
                raise ValueError(f"{what or hex(start)} ({start:#x}-{end:#x}) overlaps {lo:#x}-{hi:#x}")
        self.reserved.append((start, end))

    def alloc(self, size: int, what: str = "") -> int:
        size = (size + GRANULARITY - 1) & ~(GRANULARITY - 1)
        address = self.cursor
        while address + size <= self.limit:
            clash = next(((lo, hi) for lo, hi in self.reserved if address < hi and lo < address + size), None)
            if clash is None:
                self.reserved.append((address, address + size))
                self.cursor = address + size
                return address
            address = (clash[1] + GRANULARITY - 1) & ~(GRANULARITY - 1)
        raise AddressSpaceFull(f"no room for {what or 'an allocation'} of {size:#x} bytes below {self.limit:#x}")
