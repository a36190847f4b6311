"""Page tables: the self-reference Volatility's DTB scan needs, the shared kernel half, paged-out PTEs."""

from __future__ import annotations

import pytest

from callstack_forensics.forge.paging import SELF_REF_INDEX, AddressSpace, KernelHalf, PageFlags
from callstack_forensics.forge.physmem import PAGE, PhysicalMemory, PhysicalMemoryFull


def test_self_reference_and_translation():
    phys = PhysicalMemory()
    kernel = KernelHalf()
    space = AddressSpace(phys, kernel)
    assert phys.u64(space.dtb + SELF_REF_INDEX * 8) & 0x000FFFFFFFFFF000 == space.dtb
    space.map_new(0x7FF600001000, 0x2000, PageFlags(writable=True))
    space.write(0x7FF600001FFC, b"abcdefgh")  # straddles two pages
    assert space.read(0x7FF600001FFC, 8) == b"abcdefgh"
    assert space.translate(0x7FF600003000) is None


def test_kernel_half_shared_between_spaces():
    phys = PhysicalMemory()
    kernel = KernelHalf()
    first = AddressSpace(phys, kernel)
    second = AddressSpace(phys, kernel)
    first.map_new(0xFFFFF80000001000, PAGE, PageFlags(user=False, writable=True))
    first.write(0xFFFFF80000001000, b"kernel")
    third = AddressSpace(phys, kernel)
    assert second.read(0xFFFFF80000001000, 6) == b"kernel" and third.read(0xFFFFF80000001000, 6) == b"kernel"


def test_no_pml4_entry_looks_like_a_large_page():
    """Volatility rejects a DTB candidate whose present entries have bit 7 set."""
    phys = PhysicalMemory()
    space = AddressSpace(phys, KernelHalf())
    space.map_new(0xFFFFF80000000000, PAGE, PageFlags(user=False))
    space.map_new(0x10000, PAGE, PageFlags())
    for index in range(512):
        entry = phys.u64(space.dtb + index * 8)
        assert not (entry & 1 and entry & 0x80)


def test_paged_out_page_is_not_present():
    phys = PhysicalMemory()
    space = AddressSpace(phys, KernelHalf())
    space.map_paged_out(0x20000, swap_offset=0x55)
    assert space.translate(0x20000) is None
    with pytest.raises(ValueError, match="not mapped"):
        space.read(0x20000, 1)


def test_double_mapping_and_memory_limit_are_errors():
    phys = PhysicalMemory(limit=0x302000)
    space = AddressSpace(phys, KernelHalf())
    with pytest.raises(PhysicalMemoryFull):
        space.map_new(0x10000, 0x10000, PageFlags())
    phys = PhysicalMemory()
    space = AddressSpace(phys, KernelHalf())
    space.map_new(0x10000, PAGE, PageFlags())
    with pytest.raises(ValueError, match="mapped twice"):
        space.map_page(0x10000, phys.alloc(), PageFlags())
