"""Which pages of a user-mode range may be present, read off the page tables a table at a time.

Why: private regions are mostly reserved and never committed (every thread's stack reserves 1 MiB
and commits a few pages), and a scan that asks Volatility for each page pays a full translation
and a raised exception per missing page: at 1,600 threads that was most of a detect run. The
tables say it 512 entries per read. What this walk yields is a superset of the readable pages:
only an entry that is zero (never committed: no valid, transition, prototype or pagefile bits)
is left out, and Volatility's translation never serves a page under such an entry. Any entry it
does not follow (a large page, a not-present upper entry that still carries bits) yields its
whole span, and the caller's page reads decide there as before.

It reads Volatility's Intel layer through its own table reader (``_get_valid_table``, so a table
Volatility refuses is refused here too) and its paging description (``_structure``); a layer
without those, or a range outside the user half, answers None and the caller uses Volatility's
``mapping`` walk instead.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Iterator

USER_TOP = 1 << 47  # the canonical lower half: user mode on x64 Windows


@dataclass(frozen=True, slots=True)
class PageTableWalk:
    """One process layer's page tables, walked over a range."""

    layer: Any

    def usable(self, start: int, end: int) -> bool:
        layer = self.layer
        needed = ("_structure", "_get_valid_table", "_initial_entry", "_initial_position", "_mask",
                  "_maxphyaddr", "_index_shift", "_PAGE_PSE", "page_size")
        return (0 <= start < end <= USER_TOP and all(hasattr(layer, name) for name in needed)
                and getattr(layer, "_entry_format", None) == "<Q" and layer.page_size == 0x1000)

    def candidates(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """Page-aligned ranges, in order, that may hold readable pages of ``[start, end)``."""
        layer = self.layer
        yield from self._table(layer._initial_entry, layer._initial_position, 0, 0, start, end)

    def _table(self, entry: int, position: int, level: int, base_va: int, start: int,
               end: int) -> Iterator[tuple[int, int]]:
        layer = self.layer
        _name, size, large_page = layer._structure[level]
        table = layer._get_valid_table(layer._mask(entry, layer._maxphyaddr - 1, size + layer._index_shift))
        if table is None:
            return  # Volatility's translation refuses every page under this table as well
        child_position = position - size
        span = 1 << (child_position + 1)
        last = level == len(layer._structure) - 1
        entries = memoryview(table).cast("Q")
        first = max(start, base_va)
        low_index, high_index = _nonzero_bounds(table, (first - base_va) // span,
                                                min(len(entries), -(-(end - base_va) // span)))
        for index in range(low_index, high_index):
            value = entries[index]
            if not value:
                continue
            low = base_va + index * span
            if last or not value & 1 or (large_page and value & layer._PAGE_PSE):
                yield max(low, start), min(low + span, end)
            else:
                yield from self._table(value, child_position, level + 1, low, start, end)


def _nonzero_bounds(table: bytes, low: int, high: int) -> tuple[int, int]:
    """The entries of ``table[low:high]`` from its first non-zero one to its last: a reserved
    stack is zero entries but for the few committed pages at its top, and stripping the zero
    bytes in C spares a Python step per entry."""
    part = table[low * 8:high * 8]
    stripped = part.lstrip(b"\0")
    if not stripped:
        return low, low
    first = low + (len(part) - len(stripped)) // 8
    last = low + (len(part.rstrip(b"\0")) + 7) // 8
    return first, last


@dataclass(slots=True)
class PresentMap:
    """A process's candidate ranges (sorted, disjoint), asked about one region at a time."""

    ranges: list[tuple[int, int]]
    _ends: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self._ends = [high for _, high in self.ranges]

    def within(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """The parts of the candidate ranges inside ``[start, end)``, in order."""
        index = bisect.bisect_right(self._ends, start)
        while index < len(self.ranges):
            low, high = self.ranges[index]
            if low >= end:
                return
            yield max(low, start), min(high, end)
            index += 1
