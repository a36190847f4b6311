"""Sparse physical memory and a page-frame allocator for the forged image.

Only pages that hold something are stored; the image file is written sparse,
so a 64 MiB image of a few thousand used pages costs little disk and time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

PAGE = 0x1000
MAX_IMAGE_BYTES = 64 * 1024 * 1024


class PhysicalMemoryFull(Exception):
    """The scenario needs more physical memory than an image may have (64 MiB)."""


@dataclass
class PhysicalMemory:
    """Page frames by number; frames below ``first_free`` are reserved for fixed uses."""

    limit: int = MAX_IMAGE_BYTES
    first_free: int = 0x300
    pages: dict[int, bytearray] = field(default_factory=dict)
    _next: int = -1
    _reserved: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self._next < 0:
            self._next = self.first_free

    # ---- allocation --------------------------------------------------------

    def alloc(self) -> int:
        """A fresh zeroed frame; returns its page frame number."""
        while self._next in self.pages or self._next in self._reserved:
            self._next += 1
        pfn = self._next
        if (pfn + 1) * PAGE > self.limit:
            raise PhysicalMemoryFull(
                f"the scenario needs more than {self.limit // (1024 * 1024)} MiB of physical memory"
            )
        self.pages[pfn] = bytearray(PAGE)
        self._next += 1
        return pfn

    def claim(self, pfn: int) -> int:
        """Take a specific frame (fixed physical locations such as the boot DTB)."""
        if pfn in self.pages:
            raise ValueError(f"physical frame {pfn:#x} is already used")
        if (pfn + 1) * PAGE > self.limit:
            raise PhysicalMemoryFull(f"frame {pfn:#x} is beyond the image limit")
        self.pages[pfn] = bytearray(PAGE)
        return pfn

    def reserve(self, pfn: int) -> None:
        """Keep the allocator away from a frame (a range a scanner must find empty)."""
        self._reserved.add(pfn)

    # ---- access ----------------------------------------------------------

    def write(self, paddr: int, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            pfn, off = divmod(paddr + pos, PAGE)
            if pfn not in self.pages:
                raise ValueError(f"write to unallocated physical page {pfn * PAGE:#x}")
            chunk = min(PAGE - off, len(data) - pos)
            self.pages[pfn][off : off + chunk] = data[pos : pos + chunk]
            pos += chunk

    def read(self, paddr: int, size: int) -> bytes:
        out = bytearray()
        while len(out) < size:
            pfn, off = divmod(paddr + len(out), PAGE)
            chunk = min(PAGE - off, size - len(out))
            page = self.pages.get(pfn)
            out += page[off : off + chunk] if page is not None else bytes(chunk)
        return bytes(out)

    def u64(self, paddr: int) -> int:
        return int.from_bytes(self.read(paddr, 8), "little")

    def put_u64(self, paddr: int, value: int) -> None:
        self.write(paddr, (value & (2**64 - 1)).to_bytes(8, "little"))

    # ---- output ----------------------------------------------------------

    @property
    def used_bytes(self) -> int:
        return len(self.pages) * PAGE

    def image_size(self, granularity: int = 0x100000) -> int:
        """Highest used frame, rounded up to ``granularity`` (what the file length will be)."""
        top = (max(self.pages) + 1) * PAGE if self.pages else PAGE
        return (top + granularity - 1) // granularity * granularity

    def save(self, path: Path) -> int:
        """Write the raw image (sparse); returns its size in bytes."""
        size = self.image_size()
        with open(path, "wb") as handle:
            handle.truncate(size)
            for pfn in sorted(self.pages):
                page = self.pages[pfn]
                if any(page):
                    handle.seek(pfn * PAGE)
                    handle.write(page)
        return size
