"""A present 4 KiB page translated from its page table alone, the tables above it walked once.

Why: each page an analysis reads first costs a translation through Volatility's Intel layer, a
walk of all four levels in Python (~10 us), and an added thread touches four or five new pages
(its ETHREAD, its kernel stack's trap frame, its TEB, its stack). Pages that are read together
share their upper tables: the kernel's threads sit in a few 2 MiB stretches of pool, a thread's
stack pages in one. Here the upper levels are walked once per 2 MiB, which page table maps that
stretch is kept, and a page is one entry of that table.

Only the plain case is answered: every level present (bit 0), no large page, the entry format
and page size of x64 paging. It is answered with the layer's own pieces (its table reader, which
refuses a table Volatility refuses, its masks, its page-frame number), so the address is exactly
the one Volatility's walk gives. Anything else (a page not present, in transition, in the page
file, under a large page, outside the layer's range) answers None, and the caller asks the
layer's own ``_translate``, which then says what it says, exceptions included.
"""

from __future__ import annotations

import struct
import sys
from typing import Any

from volatility3.framework.layers import intel

PAGE_SHIFT = 12
STRETCH_SHIFT = 21  # the span one page table maps (512 entries of 4 KiB)
MAX_STRETCHES = 1 << 16  # page tables remembered per layer; past it the memory starts afresh
_ENTRY = struct.Struct("<Q")
_NEEDED = ("_structure", "_get_valid_table", "_initial_entry", "_initial_position", "_mask", "_maxphyaddr",
           "_index_shift", "_PAGE_PSE", "_pte_pfn", "_base_layer", "address_mask", "minimum_address",
           "maximum_address", "page_size")


class LeafWalk:
    """One Intel x64 layer's present 4 KiB pages, translated from their page table."""

    __slots__ = ("_layer", "_tables", "_frame_mask")

    def __init__(self, layer: Any) -> None:
        self._layer = layer
        self._tables: dict[int, int | None] = {}  # va >> 21 -> its page table's physical base (None: not plain)
        self._frame_mask = _frame_mask(layer)

    @staticmethod
    def usable(layer: Any) -> bool:
        """x64 paging as Volatility's Intel layer describes it (4 levels of 512 eight-byte entries)."""
        return (all(hasattr(layer, name) for name in _NEEDED) and getattr(layer, "_entry_format", None) == "<Q"
                and layer.page_size == 1 << PAGE_SHIFT and len(layer._structure) == 4
                and all(size == 9 for _, size, _ in layer._structure) and sys.byteorder == "little")

    def translate(self, offset: int) -> tuple[int, int, str] | None:
        """``(physical address, page size, layer below)`` as the layer's ``_translate`` gives it, or None."""
        stretch = offset >> STRETCH_SHIFT
        base = self._tables.get(stretch, -1)
        if base == -1:
            base = self._page_table(offset)
            if len(self._tables) >= MAX_STRETCHES:
                self._tables.clear()
            self._tables[stretch] = base
        if base is None:
            return None
        layer = self._layer
        table = layer._get_valid_table(base)
        if table is None:
            return None
        (entry,) = _ENTRY.unpack_from(table, ((offset >> PAGE_SHIFT) & 0x1FF) << 3)
        if not entry & 1:
            return None
        mask = self._frame_mask
        frame = entry & mask if mask is not None else layer._pte_pfn(entry) << PAGE_SHIFT
        return frame | (offset & 0xFFF), 1 << PAGE_SHIFT, layer._base_layer

    def _page_table(self, offset: int) -> int | None:
        """The physical base of the page table mapping ``offset``, walked as Volatility walks it."""
        layer = self._layer
        if not layer.minimum_address <= (offset & layer.address_mask) <= layer.maximum_address:
            return None
        entry, position = layer._initial_entry, layer._initial_position
        for _name, size, large_page in layer._structure[:-1]:
            if not entry & 1:
                return None
            table = layer._get_valid_table(layer._mask(entry, layer._maxphyaddr - 1, size + layer._index_shift))
            if table is None:
                return None
            start, position = position, position - size
            index = layer._mask(offset, start, position + 1) >> (position + 1)
            (entry,) = _ENTRY.unpack_from(table, index << layer._index_shift)
            if large_page and entry & layer._PAGE_PSE:
                return None
        if not entry & 1:
            return None
        _name, size, _large = layer._structure[-1]
        return layer._mask(entry, layer._maxphyaddr - 1, size + layer._index_shift)


def _frame_mask(layer: Any) -> int | None:
    """The bits of a page-table entry that are its page's physical address, when the layer takes
    the page-frame number as Volatility's Intel layer does (the entry's bits below
    ``_maxphyaddr``, less the page offset): then ``entry & mask`` is ``_pte_pfn(entry) << 12``
    without two method calls per page (four new pages per added thread). None for a layer that
    computes it otherwise (Linux's, which strips its own flag bits): it is asked each time."""
    if type(layer)._pte_pfn is not intel.Intel._pte_pfn or getattr(layer, "page_shift", None) != PAGE_SHIFT:
        return None
    return ((1 << layer._maxphyaddr) - 1) & ~((1 << PAGE_SHIFT) - 1)
