"""Sparse physical memory of a machine of realistic size, and a page-frame allocator for it.

A real machine has gigabytes of RAM and readers judge an image by it (LeechCore refuses raw files
under 16 MiB; real kernels expect pages far above the few MiB a scenario fills). Only pages that
hold something are stored, and the image file is written sparse: a 4 GiB image of a few thousand
used pages costs a few MiB of disk and a few milliseconds to write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

PAGE = 0x1000
MIB = 1024 * 1024
DEFAULT_RAM = 4096 * MIB   # a typical desktop or VM; the file is sparse, so the size costs no disk
MIN_RAM = 64 * MIB         # room for the kernel image, page tables and a scenario's pages
MAX_RAM = 1 << 40          # what the forge's page tables address (and far beyond any scenario)
_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": MIB, "G": 1024 * MIB, "T": 1024 * 1024 * MIB}


class PhysicalMemoryFull(Exception):
    """The scenario needs more physical memory than the machine has."""


class RamSizeError(ValueError):
    """A RAM size that is not a size, or not one the forge can build."""


def parse_ram(text: str | int) -> int:
    """``4G``, ``512M``, ``4096MiB`` or a byte count -> bytes, checked against the forge's limits."""
    if isinstance(text, int):
        size = text
    else:
        match = _SIZE.match(str(text))
        if not match:
            raise RamSizeError(f"not a RAM size: {text!r} (write e.g. 4G, 512M or 2048MiB)")
        size = int(match.group(1)) * _UNITS[match.group(2).upper()]
    if size % (2 * MIB):
        raise RamSizeError(f"RAM size {size:#x} is not a multiple of 2 MiB")
    if not MIN_RAM <= size <= MAX_RAM:
        raise RamSizeError(f"RAM size {size // MIB} MiB is outside {MIN_RAM // MIB} MiB .. {MAX_RAM // MIB} MiB")
    return size


@dataclass
class PhysicalMemory:
    """Page frames by number; frames below ``first_free`` are reserved for fixed uses.

    ``runs`` are ranges of frames mapped as a whole (large pages): their pages read as zeros and
    come into being on their first write, so a 16 MiB kernel image costs only its written pages.
    """

    limit: int = DEFAULT_RAM
    first_free: int = 0x300
    pages: dict[int, bytearray] = field(default_factory=dict)
    _next: int = -1
    _reserved: set[int] = field(default_factory=set)
    runs: list[range] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self._next < 0:
            self._next = self.first_free

    # ---- allocation --------------------------------------------------------

    def alloc(self) -> int:
        """A fresh zeroed frame; returns its page frame number."""
        while self._next in self.pages or self._next in self._reserved or self._in_run(self._next):
            self._next += 1
        pfn = self._next
        if (pfn + 1) * PAGE > self.limit:
            raise PhysicalMemoryFull(f"the scenario needs more than {self.limit // MIB} MiB of physical memory")
        self.pages[pfn] = bytearray(PAGE)
        self._next += 1
        return pfn

    def claim(self, pfn: int) -> int:
        """Take a specific frame (fixed physical locations such as the boot DTB)."""
        if pfn in self.pages or self._in_run(pfn):
            raise ValueError(f"physical frame {pfn:#x} is already used")
        if (pfn + 1) * PAGE > self.limit:
            raise PhysicalMemoryFull(f"frame {pfn:#x} is beyond the image limit")
        self.pages[pfn] = bytearray(PAGE)
        return pfn

    def claim_run(self, first: int, count: int) -> range:
        """Take ``count`` frames from ``first`` as one run (what a large page maps)."""
        run = range(first, first + count)
        if run.stop * PAGE > self.limit:
            raise PhysicalMemoryFull(f"frames {first:#x}+{count:#x} are beyond the {self.limit // MIB} MiB of RAM")
        if any(p in self.pages for p in run) or any(self._in_run(p) for p in (run.start, run.stop - 1)):
            raise ValueError(f"physical frames {first:#x}+{count:#x} are already used")
        self.runs.append(run)
        return run

    def reserve(self, pfn: int) -> None:
        """Keep the allocator away from a frame (a range a scanner must find empty)."""
        self._reserved.add(pfn)

    def _in_run(self, pfn: int) -> bool:
        return any(pfn in run for run in self.runs)

    # ---- access ----------------------------------------------------------

    def write(self, paddr: int, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            pfn, off = divmod(paddr + pos, PAGE)
            if pfn not in self.pages:
                if not self._in_run(pfn):
                    raise ValueError(f"write to unallocated physical page {pfn * PAGE:#x}")
                self.pages[pfn] = bytearray(PAGE)
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

    def image_size(self) -> int:
        """The file's length: the machine's RAM (a raw image is physical memory from 0 to the top)."""
        return self.limit

    def save(self, path: Path) -> int:
        """Write the raw image (sparse: only non-zero pages are written); returns its size in bytes."""
        size = self.image_size()
        with open(path, "wb") as handle:
            handle.truncate(size)
            for pfn in sorted(self.pages):
                page = self.pages[pfn]
                if any(page):
                    handle.seek(pfn * PAGE)
                    handle.write(page)
        return size
