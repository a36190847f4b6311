"""x64 4-level page tables, one address space per process, kernel half shared.

Each PML4 refers to itself at :data:`SELF_REF_INDEX` (0x1ED, where Windows
kept it before randomisation and where Volatility's DTB scanners look), and its
kernel half (entries 256..511) points at the same page-directory-pointer tables
as every other process, as on Windows. Pages can be mapped present, or
not present with a Windows software PTE (paged out), which Volatility reports
as an invalid (paged) address rather than as zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from .physmem import PAGE, PhysicalMemory

SELF_REF_INDEX = 0x1ED
KERNEL_HALF = 0xFFFF800000000000

P, RW, US, PWT, PCD, A, D, PS, G = 1, 2, 4, 8, 0x10, 0x20, 0x40, 0x80, 0x100
NX = 1 << 63
LARGE_PAGE = 0x200000
ADDR_MASK = 0x000FFFFFFFFFF000
TABLE_FLAGS_USER = P | RW | US | A
TABLE_FLAGS_KERNEL = P | RW | A | D

# Windows software-PTE protection (MM_*) for a paged-out read/write page.
MM_READWRITE = 4


@dataclass(frozen=True, slots=True)
class PageFlags:
    """How a leaf page is mapped: user/kernel, writable, executable, dirty."""

    user: bool = True
    writable: bool = False
    executable: bool = False
    dirty: bool = False

    def pte(self, pfn: int, large: bool = False) -> int:
        entry = (pfn << 12) | P | A | (PS if large else 0)
        if self.user:
            entry |= US
        else:
            entry |= G
        if self.writable:
            entry |= RW
        if self.dirty:
            entry |= D
        if not self.executable:
            entry |= NX
        return entry


KERNEL_DATA = PageFlags(user=False, writable=True, dirty=True)
KERNEL_CODE = PageFlags(user=False, executable=True)


def canonical(va: int) -> int:
    va &= (1 << 48) - 1
    return va | 0xFFFF000000000000 if va & (1 << 47) else va


def _indices(va: int) -> tuple[int, int, int, int]:
    return (va >> 39) & 0x1FF, (va >> 30) & 0x1FF, (va >> 21) & 0x1FF, (va >> 12) & 0x1FF


@dataclass
class KernelHalf:
    """The PML4 entries 256..511 every address space shares, and the PML4s that share them."""

    entries: dict[int, int] = field(default_factory=dict)
    pml4s: list[int] = field(default_factory=list)


class AddressSpace:
    """One page-table hierarchy over a :class:`PhysicalMemory`."""

    @classmethod
    def attach(cls, phys: PhysicalMemory, kernel: KernelHalf, dtb: int) -> "AddressSpace":
        """A view of an existing hierarchy (nothing written): for reading a built image back."""
        space = cls.__new__(cls)
        space.phys, space.kernel, space.pml4_pfn, space.dtb = phys, kernel, dtb // PAGE, dtb
        return space

    def __init__(self, phys: PhysicalMemory, kernel: KernelHalf, pml4_pfn: int | None = None) -> None:
        self.phys = phys
        self.kernel = kernel
        self.pml4_pfn = pml4_pfn if pml4_pfn is not None else phys.alloc()
        self.dtb = self.pml4_pfn * PAGE
        phys.put_u64(self.dtb + SELF_REF_INDEX * 8, self.dtb | P | RW | A | D | NX)
        for index, entry in kernel.entries.items():
            phys.put_u64(self.dtb + index * 8, entry)
        kernel.pml4s.append(self.pml4_pfn)

    # ---- mapping ---------------------------------------------------------

    def map_page(self, va: int, pfn: int, flags: PageFlags) -> None:
        """Map one 4 KiB page; remapping an already present page is an error."""
        slot = self._pte_slot(va, create=True)
        assert slot is not None
        if self.phys.u64(slot) & P:
            raise ValueError(f"virtual page {canonical(va):#x} is mapped twice")
        self.phys.put_u64(slot, flags.pte(pfn))

    def map_large(self, va: int, first_pfn: int, flags: PageFlags) -> None:
        """Map one 2 MiB page (a page-directory entry with PS set) over 512 frames from ``first_pfn``.

        Windows maps its kernel image this way; both ``va`` and the frames must be 2 MiB aligned."""
        if va % LARGE_PAGE or (first_pfn * PAGE) % LARGE_PAGE:
            raise ValueError(f"a large page needs 2 MiB alignment: {canonical(va):#x} -> {first_pfn * PAGE:#x}")
        i4, i3, i2, _ = _indices(va)
        kernel = canonical(va) >= KERNEL_HALF
        pdpt = self._next_table(self.dtb + i4 * 8, True, kernel, top=True)
        assert pdpt is not None
        pd = self._next_table(pdpt + i3 * 8, True, kernel)
        assert pd is not None
        if self.phys.u64(pd + i2 * 8) & P:
            raise ValueError(f"virtual page {canonical(va):#x} is mapped twice")
        self.phys.put_u64(pd + i2 * 8, flags.pte(first_pfn, large=True))

    def map_new(self, va: int, size: int, flags: PageFlags) -> list[int]:
        """Map fresh zeroed frames over ``[va, va+size)`` (page-aligned); returns the frames."""
        frames = []
        for page in range(va & ~(PAGE - 1), va + size, PAGE):
            pfn = self.phys.alloc()
            self.map_page(page, pfn, flags)
            frames.append(pfn)
        return frames

    def ensure(self, va: int, size: int, flags: PageFlags) -> None:
        """Map fresh frames wherever a page of the range is not yet present."""
        for page in range(va & ~(PAGE - 1), va + size, PAGE):
            if self.translate(page) is None:
                self.map_page(page, self.phys.alloc(), flags)

    def map_paged_out(self, va: int, swap_offset: int) -> None:
        """A not-present page whose PTE says it lives in the page file."""
        slot = self._pte_slot(va, create=True)
        assert slot is not None
        self.phys.put_u64(slot, (swap_offset << 32) | (MM_READWRITE << 5))

    # ---- access ------------------------------------------------------------

    def translate(self, va: int) -> int | None:
        large = self._large_entry(va)
        if large is not None:
            return (large & ADDR_MASK & ~(LARGE_PAGE - 1)) | (va & (LARGE_PAGE - 1))
        slot = self._pte_slot(va, create=False)
        if slot is None:
            return None
        entry = self.phys.u64(slot)
        if not entry & P:
            return None
        return (entry & ADDR_MASK) | (va & (PAGE - 1))

    def _large_entry(self, va: int) -> int | None:
        """The present 2 MiB page-directory entry mapping ``va``, if a large page maps it."""
        i4, i3, i2, _ = _indices(va)
        entry = self.phys.u64(self.dtb + i4 * 8)
        for index in (i3, i2):
            if not entry & P:
                return None
            entry = self.phys.u64((entry & ADDR_MASK) + index * 8)
        return entry if entry & P and entry & PS else None

    def write(self, va: int, data: bytes) -> None:
        for va_chunk, pa, n in self._chunks(va, len(data)):
            self.phys.write(pa, data[va_chunk - va : va_chunk - va + n])

    def read(self, va: int, size: int) -> bytes:
        return b"".join(self.phys.read(pa, n) for _, pa, n in self._chunks(va, size))

    def u64(self, va: int) -> int:
        return int.from_bytes(self.read(va, 8), "little")

    def put_u64(self, va: int, value: int) -> None:
        self.write(va, (value & (2**64 - 1)).to_bytes(8, "little"))

    def _chunks(self, va: int, size: int) -> Iterator[tuple[int, int, int]]:
        pos = va
        end = va + size
        while pos < end:
            n = min(end, (pos & ~(PAGE - 1)) + PAGE) - pos
            pa = self.translate(pos)
            if pa is None:
                raise ValueError(f"virtual address {canonical(pos):#x} is not mapped")
            yield pos, pa, n
            pos += n

    # ---- tables ------------------------------------------------------------

    def _pte_slot(self, va: int, create: bool) -> int | None:
        """Physical address of the PTE for ``va``, creating the tables above it if asked."""
        i4, i3, i2, i1 = _indices(va)
        kernel = canonical(va) >= KERNEL_HALF
        if i4 == SELF_REF_INDEX:
            raise ValueError(f"{canonical(va):#x} lies in the page-table self-map")
        pml4e_addr = self.dtb + i4 * 8
        table = self._next_table(pml4e_addr, create, kernel, top=True)
        for index in (i3, i2):
            if table is None:
                return None
            if self.phys.u64(table + index * 8) & PS:
                if create:
                    raise ValueError(f"virtual page {canonical(va):#x} lies in a large page")
                return None
            table = self._next_table(table + index * 8, create, kernel)
        return None if table is None else table + i1 * 8

    def _next_table(self, entry_addr: int, create: bool, kernel: bool, top: bool = False) -> int | None:
        entry = self.phys.u64(entry_addr)
        if entry & P:
            return entry & ADDR_MASK
        if not create:
            return None
        new = self.phys.alloc() * PAGE
        value = new | (TABLE_FLAGS_KERNEL if kernel else TABLE_FLAGS_USER)
        if top and kernel:
            index = (entry_addr - self.dtb) // 8
            self.kernel.entries[index] = value
            for pfn in self.kernel.pml4s:
                self.phys.put_u64(pfn * PAGE + index * 8, value)
        else:
            self.phys.put_u64(entry_addr, value)
        return new
