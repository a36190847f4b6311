"""Reads that fit in one page, served in two steps instead of Volatility's generic path.

Why: nearly every read the analysis makes is small and inside one page (a VAD node, an ETHREAD's
members, a trap frame, a stack page), and Volatility's ``read`` goes through its ``mapping``
generator, a chunk loop and checks meant for reads that span pages: several times the cost of
the translation itself, paid tens of thousands of times per image. Here such a read is the same
two steps that path ends in: the layer's own ``_translate`` (its page-table walk) and one read of
the layer below, after the same validity check. Anything else (a read across a page, a padded or
empty read, any failure on the way) goes to the layer's own ``read``, so the bytes, and every
exception with its address, stay exactly Volatility's.

Two costs remain in those steps, and both are paid again for every read of a page already read
(an ETHREAD's members, a VAD tree's nodes, a stack page unwound frame by frame):

- the translation, ~10 us through Volatility's walk: a page's translation is kept here, since the
  image does not change under the analysis, and a page not yet translated is looked up in its
  page table when that is the plain case (``leafwalk``), the tables above it walked once per 2 MiB;
- the read of a raw file below, a lock, a seek and a buffered read in Volatility's file layer:
  where that layer is a plain file on disk, the same bytes come from one ``os.pread`` on its
  descriptor. Any other layer below (a crash dump's, LiME's, a compressed or remote file's)
  keeps its own ``read``.

On the kernel's layer a third cost is the read itself: its structures are read member by member
and side by side (a VAD node in four reads, an ETHREAD twice, a process's VAD nodes and threads in
a few pages of pool), so that layer holds the bytes of the pages it read last and serves the
next read of one from them. A page held is the bytes the same translation gave; a page that does
not read whole is read exactly as asked, every time.
"""

from __future__ import annotations

import os
import stat
from typing import Any, Callable

from volatility3.framework import exceptions

from .leafwalk import LeafWalk

PAGE = 0x1000
MAX_SPAN = 16 * PAGE  # longer reads (a module's headers, a whole region) take the layer's path
MAX_PAGES = 1 << 16  # translations kept per layer (a few MiB); past it the table starts afresh
KERNEL_HELD_PAGES = 256  # pages of the kernel's layer whose bytes are kept (1 MiB)

BelowRead = Callable[[int, int], bytes]


class FastReads:
    """A Volatility translation layer whose one-page reads take the short path; everything else
    (attributes, other methods) is the layer's own."""

    __slots__ = ("layer", "_translate", "_layers", "_pages", "_below", "_leaves", "_hold", "_held")

    def __init__(self, layer: Any, hold: int = 0) -> None:
        """``hold``: how many pages' bytes to keep (none by default). Worth it on the kernel's layer,
        whose structures are read member by member and in neighbours: a VAD node in four reads, an
        ETHREAD twice (its members, then its APC and debug state), a process's threads and VAD
        nodes in the same few pages of pool: one read of the page instead of a read each."""
        self.layer = layer
        self._translate = getattr(layer, "_translate", None)
        context = getattr(layer, "context", None)
        self._layers = getattr(context, "layers", None)
        if self._layers is None:
            self._translate = None
        # virtual page -> (read below, its physical page, the layer below's name)
        self._pages: dict[int, tuple[BelowRead, int, str]] = {}
        self._below: dict[str, BelowRead] = {}
        self._leaves = LeafWalk(layer) if self._translate is not None and LeafWalk.usable(layer) else None
        self._hold = hold
        self._held: dict[int, bytes] = {}  # virtual page -> its bytes, oldest first

    def read(self, offset: int, length: int, pad: bool = False) -> bytes:
        if self._translate is not None and not pad and length > 0:
            if (offset & (PAGE - 1)) + length <= PAGE:
                data = self._one_page(offset, length)
            else:
                data = self._pages_of(offset, length)
            if data is not None:
                return data
        return self.layer.read(offset, length, pad)

    def is_valid(self, offset: int, length: int = 1) -> bool:
        """The layer's own answer: a range inside one page is valid when the page translates and the
        layer below holds the translated range and its first byte (the two checks Volatility's
        ``mapping`` and ``is_valid`` make of a single chunk); the translation is the kept one, or a
        new one kept for the reads that follow. Other ranges (empty, across pages) take the layer's
        own path. Why: walking a kernel list asks this three times per link (a process's threads)."""
        if self._translate is None or length <= 0 or (offset & (PAGE - 1)) + length > PAGE:
            return self.layer.is_valid(offset, length)
        within = offset & (PAGE - 1)
        known = self._pages.get(offset - within)
        if known is not None:
            mapped, name = known[1] + within, known[2]
        else:
            try:
                mapped, _, name = self._translation(offset)
            except exceptions.InvalidAddressException:
                return False
        below = self._layers[name]
        if not (below.is_valid(mapped, length) and below.is_valid(mapped)):
            return False
        if known is None:
            self._keep(offset - within, self._below_read(name), mapped - within, name)
        return True

    def _pages_of(self, offset: int, length: int) -> bytes | None:
        """A read across pages (an _ETHREAD, a VAD node on a boundary) as one short read per page,
        joined as Volatility's own read joins its chunks; None at the first piece that fails."""
        if length > MAX_SPAN:
            return None
        pieces = []
        end = offset + length
        while offset < end:
            size = min(end, (offset | (PAGE - 1)) + 1) - offset
            piece = self._one_page(offset, size)
            if piece is None:
                return None
            pieces.append(piece)
            offset += size
        return b"".join(pieces)

    def _one_page(self, offset: int, length: int) -> bytes | None:
        within = offset & (PAGE - 1)
        page = offset - within
        held = self._held.get(page)
        if held is not None:
            return held[within:within + length]
        known = self._pages.get(page)
        try:
            if known is not None:
                data = self._from_page(page, known[0], known[1], within, length)
            else:
                data = self._translated(offset, length)
        except Exception:  # the layer's own read says what went wrong, in its own words
            return None
        return data if data is not None and len(data) == length else None

    def _translation(self, offset: int) -> tuple[int, int, str]:
        """``(physical address, page size, layer below)``: from the page table alone in the plain
        case (``leafwalk``), else the layer's own ``_translate``, exceptions included."""
        plain = self._leaves.translate(offset) if self._leaves is not None else None
        return plain if plain is not None else self._translate(offset)

    def _translated(self, offset: int, length: int) -> bytes | None:
        mapped, page_size, name = self._translation(offset)
        if offset % page_size + length > page_size:
            return None
        read = self._below_read(name)
        within = offset & (PAGE - 1)
        data = self._from_page(offset - within, read, mapped - within, within, length)
        if len(data) == length:
            self._keep(offset - within, read, mapped - within, name)
        return data

    def _from_page(self, page: int, read: BelowRead, physical: int, within: int, length: int) -> bytes:
        """The bytes at ``within`` in a translated page: when pages are held, the whole page is read
        once and kept; a page that does not read whole (it runs past the end of the layer below)
        is read exactly as asked, and not held."""
        if self._hold:
            try:
                whole = read(physical, PAGE)
            except Exception:  # the exact read below says whether the asked range is there
                whole = b""
            if len(whole) == PAGE:
                if len(self._held) >= self._hold:
                    del self._held[next(iter(self._held))]  # the page held longest
                self._held[page] = whole
                return whole[within:within + length]
        return read(physical + within, length)

    def _keep(self, page: int, read: BelowRead, physical: int, name: str) -> None:
        if len(self._pages) >= MAX_PAGES:
            self._pages.clear()
        self._pages[page] = (read, physical, name)

    def _below_read(self, name: str) -> BelowRead:
        read = self._below.get(name)
        if read is None:
            read = self._below[name] = below_reader(self._layers[name])
        return read

    def __getattr__(self, name: str) -> Any:
        return getattr(self.layer, name)


def below_reader(layer: Any) -> BelowRead:
    """How to read ``layer`` once a translation has landed in it: Volatility's validity check,
    then a ``pread`` on the file when the layer is a plain file, else the layer's own ``read``.
    A read that comes back short is left to the caller, which then takes the layer's own path."""
    descriptor = _plain_file(layer)
    if descriptor is None:
        is_valid = layer.is_valid

        def read(offset: int, length: int) -> bytes:
            if not is_valid(offset, length):
                raise ValueError("outside the layer below")
            return layer.read(offset, length)
        return read

    # A file layer's validity check is its bounds, 0 to its size - 1 (Volatility's FileLayer), and
    # the size is fixed (_plain_file checked it against the file's): the same test, with the bound
    # read once instead of through two properties per read.
    last = layer.maximum_address

    def pread(offset: int, length: int) -> bytes:
        if offset < 0 or length <= 0 or offset + length - 1 > last:
            raise ValueError("outside the layer below")
        return os.pread(descriptor, length, offset)
    return pread


def _plain_file(layer: Any) -> int | None:
    """The descriptor of the file a Volatility file layer reads, when it is one ``pread`` can read
    the same bytes from: a regular file of exactly the layer's size (what Volatility opened, so a
    file it decompressed is the decompressed copy). None for anything else."""
    if type(layer).__name__ != "FileLayer" or not hasattr(layer, "_file"):
        return None
    try:
        descriptor = layer._file.fileno()
        status = os.fstat(descriptor)
        size = layer.maximum_address + 1
    except Exception:  # no descriptor (a remote or in-memory file), or a layer without a size
        return None
    if not stat.S_ISREG(status.st_mode) or status.st_size != size:
        return None
    probe = min(size, PAGE)
    try:
        if os.pread(descriptor, probe, 0) != layer.read(0, probe):
            return None
    except Exception:
        return None
    return descriptor
