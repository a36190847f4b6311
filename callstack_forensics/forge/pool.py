"""Kernel pool allocations: every kernel object sits behind a real pool header.

Volatility finds a VAD's kind from the pool tag 12 bytes before the node, and
its scanners find processes and threads by tag, so objects are laid out as
Windows lays them out: ``_POOL_HEADER`` [``_OBJECT_HEADER``] body.
"""

from __future__ import annotations

from .layout import Layout, StructBuffer
from .paging import KERNEL_DATA, AddressSpace
from .physmem import PAGE

POOL_ALIGN = 16


class KernelPool:
    """A bump allocator over fresh kernel pages; small blocks never straddle a page."""

    def __init__(self, space: AddressSpace, layout: Layout, base: int) -> None:
        self.space = space
        self.layout = layout
        self.cursor = base
        self.header_size = layout.type_size("_POOL_HEADER")

    def alloc(self, size: int, tag: bytes, object_header: bool = False, type_index: int = 0,
              name_info: int = 0) -> int:
        """Allocate ``size`` bytes tagged ``tag``; returns the address of the body (zeroed).

        With ``object_header`` the body follows an _OBJECT_HEADER (and ``name_info`` bytes of optional
        _OBJECT_HEADER_NAME_INFO before it); ``type_index`` is the header's TypeIndex, already encoded.
        """
        if len(tag) != 4:
            raise ValueError(f"pool tag must be 4 bytes: {tag!r}")
        prefix = self.header_size
        if object_header:
            prefix += name_info + self.layout.offset("_OBJECT_HEADER", "Body")
        block = _round(prefix + size, POOL_ALIGN)
        start = self._reserve(block)
        self._write_pool_header(start, block, tag)
        body = start + prefix
        if object_header:
            self._write_object_header(body, type_index, 0x2 if name_info else 0)
        return body

    def header_of(self, body: int) -> int:
        """The _OBJECT_HEADER of an object whose body is at ``body``."""
        return body - self.layout.offset("_OBJECT_HEADER", "Body")

    def alloc_page(self) -> int:
        """A whole page without a pool header (a big-pool allocation, as handle table pages are)."""
        self.cursor = _round(self.cursor, PAGE)
        start = self.cursor
        self.space.ensure(start, PAGE, KERNEL_DATA)
        self.cursor += PAGE
        return start

    def alloc_bytes(self, data: bytes, tag: bytes) -> int:
        va = self.alloc(len(data), tag)
        self.space.write(va, data)
        return va

    def _reserve(self, block: int) -> int:
        if block <= PAGE:
            page_end = (self.cursor & ~(PAGE - 1)) + PAGE
            if self.cursor + block > page_end:
                self.cursor = page_end
        else:
            self.cursor = _round(self.cursor, PAGE)
        start = self.cursor
        self.space.ensure(start, block, KERNEL_DATA)
        self.cursor += block
        return start

    def _write_pool_header(self, va: int, block: int, tag: bytes) -> None:
        header = StructBuffer(self.layout, "_POOL_HEADER")
        header.set("PoolTag", int.from_bytes(tag, "little"))
        header.set_if("BlockSize", min(block // POOL_ALIGN, 0xFF))
        header.set_if("PoolType", 2)  # NonPagedPoolNx-ish: nonzero means "in use"
        self.space.write(va, bytes(header.data))

    def _write_object_header(self, body: int, type_index: int, info_mask: int) -> None:
        header_va = self.header_of(body)
        header = StructBuffer(self.layout, "_OBJECT_HEADER")
        header.set("PointerCount", 1)
        header.set_if("HandleCount", 1)
        header.set_if("TypeIndex", type_index)
        header.set_if("InfoMask", info_mask)
        raw = bytes(header.data[: self.layout.offset("_OBJECT_HEADER", "Body")])
        self.space.write(header_va, raw)


def _round(value: int, align: int) -> int:
    return (value + align - 1) // align * align
