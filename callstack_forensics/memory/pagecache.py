"""A page cache in front of a :class:`ProcessMemory`.

Volatility's layer reads are costly (page-table walks in Python), and an unwind
touches the same stack and code pages many times: the walker reads everything
through this cache so each page is translated once per process. Missing pages
are cached too, so a smeared region is not re-probed for every frame.
"""

from __future__ import annotations

import struct
from collections import OrderedDict

from .interface import PAGE_SIZE, MemoryMissing, ProcessMemory

_MISSING = b""
_QWORD = struct.Struct("<Q")


class PageCache:
    """Read-through cache of whole pages with a bounded size (LRU)."""

    def __init__(self, memory: ProcessMemory, max_pages: int = 4096) -> None:
        self.memory = memory
        self.max_pages = max_pages
        self._pages: OrderedDict[int, bytes] = OrderedDict()
        self.bytes_read = 0

    def _page(self, page: int) -> bytes:
        data = self._pages.get(page)
        if data is not None:
            self._pages.move_to_end(page)
            return data
        try:
            data = self.memory.read(page, PAGE_SIZE)
            self.bytes_read += PAGE_SIZE
        except MemoryMissing:
            data = _MISSING
        except Exception as exc:  # a hostile source must not kill the walk
            raise MemoryMissing(page, f"unreadable ({type(exc).__name__})") from exc
        self._pages[page] = data
        if len(self._pages) > self.max_pages:
            self._pages.popitem(last=False)
        return data

    def peek(self, page: int) -> bytes | None:
        """The page if it is held (its bytes, or b"" when the source did not have it), else
        None; never reads, and never reorders or grows the cache: for a scan that would read the
        same pages the walks just did, without keeping every page it passes."""
        return self._pages.get(page)

    def clear(self) -> None:
        """Forget every page: once a process's threads are walked, its stack pages are never read
        through the cache again, and keeping them for every process until the events are built
        would grow the run's memory with the image's thread count."""
        self._pages.clear()

    def read(self, address: int, size: int) -> bytes:
        """Exactly ``size`` bytes or :class:`MemoryMissing` at the first absent page."""
        if size <= 0:
            return b""
        if address < 0 or address + size > 1 << 64:
            raise MemoryMissing(address, "outside the address space")
        page = address & ~(PAGE_SIZE - 1)
        off = address - page
        if off + size <= PAGE_SIZE:
            data = self._page(page)
            if not data:
                return self._direct(address, size)
            return data[off : off + size]
        out = bytearray()
        cur = address
        end = address + size
        while cur < end:
            page = cur & ~(PAGE_SIZE - 1)
            data = self._page(page)
            take = min(end, page + PAGE_SIZE) - cur
            out += data[cur - page : cur - page + take] if data else self._direct(cur, take)
            cur += take
        return bytes(out)

    def _direct(self, address: int, size: int) -> bytes:
        """A range on a page that is not whole in the source: a normal minidump holds stacks
        from RSP-8 and small pieces of modules, not page-aligned. Read it as asked."""
        try:
            return self.memory.read(address, size)
        except MemoryMissing:
            raise
        except Exception as exc:
            raise MemoryMissing(address, f"unreadable ({type(exc).__name__})") from exc

    def qword(self, address: int) -> int:
        """``read(address, 8)`` as a little-endian integer, MemoryMissing as ``read`` raises it.
        Why: an unwind reads a few such slots per frame, and a slot on a page already held is
        one dictionary lookup here, not the general read's checks and slices."""
        page = address & ~(PAGE_SIZE - 1)
        within = address - page
        if within <= PAGE_SIZE - 8:
            data = self._pages.get(page)
            if data:
                self._pages.move_to_end(page)
                return _QWORD.unpack_from(data, within)[0]
        return _QWORD.unpack(self.read(address, 8))[0]

    def try_read(self, address: int, size: int) -> bytes | None:
        try:
            return self.read(address, size)
        except MemoryMissing:
            return None

    def u64(self, address: int) -> int | None:
        data = self.try_read(address, 8)
        return None if data is None else struct.unpack("<Q", data)[0]

    def u32(self, address: int) -> int | None:
        data = self.try_read(address, 4)
        return None if data is None else struct.unpack("<I", data)[0]

    def leading(self, end: int, size: int) -> bytes:
        """Up to ``size`` bytes that end at ``end``: fewer when earlier bytes are missing, down
        to the byte (a normal minidump holds code from 128 bytes before each thread's
        instruction pointer, not from a page boundary)."""
        out = b""
        cur = end
        start = max(0, end - size)
        while cur > start:
            page_start = max(start, (cur - 1) & ~(PAGE_SIZE - 1))
            data = self.try_read(page_start, cur - page_start)
            if data is None:
                return self._present_suffix(page_start, cur) + out
            out = data + out
            cur = page_start
        return out

    def _present_suffix(self, start: int, end: int) -> bytes:
        """The longest present run of bytes ending at ``end`` inside one page (binary search:
        if ``[x, end)`` is present, so is every shorter range)."""
        lo, hi = start + 1, end  # hi: a start known to be present (the empty range at end)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.try_read(mid, end - mid) is None:
                lo = mid + 1
            else:
                hi = mid
        return self.try_read(hi, end - hi) or b""

    def trailing(self, start: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``start`` (fewer when later bytes are missing, down to
        the byte, as :meth:`leading`)."""
        out = b""
        cur = start
        end = start + size
        while cur < end:
            take = min(end, (cur & ~(PAGE_SIZE - 1)) + PAGE_SIZE) - cur
            data = self.try_read(cur, take)
            if data is None:
                return out + self._present_prefix(cur, cur + take)
            out += data
            cur += take
        return out

    def _present_prefix(self, start: int, end: int) -> bytes:
        """The longest present run of bytes from ``start`` inside one page."""
        lo, hi = start, end - 1  # lo: an end known to be present (the empty range at start)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.try_read(start, mid - start) is None:
                hi = mid - 1
            else:
                lo = mid
        return self.try_read(start, lo - start) or b""
