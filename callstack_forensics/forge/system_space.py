"""The kernel half's other regions: the PFN database, paged pool, system PTEs and the HAL's heap.

A booted Windows maps many top-level (PML4) regions in the kernel half, and readers that look
for the kernel's page-table root by its shape count them (MemProcFS wants at least six valid
supervisor entries). Each region here gets its first page mapped, where Windows keeps one, and
the kernel global that points to it where the table names one; nothing reads their contents.
"""

from __future__ import annotations

from dataclasses import dataclass

from .machine import Machine
from .paging import KERNEL_DATA


@dataclass(frozen=True, slots=True)
class SystemRegion:
    name: str
    va: int
    pointer: str | None = None   # the kernel global that holds the region's address


REGIONS = (
    SystemRegion("PFN database", 0xFFFFC68000000000, "MmPfnDatabase"),
    SystemRegion("paged pool", 0xFFFFA38000000000, "MmPagedPoolStart"),
    SystemRegion("system PTEs", 0xFFFFE58000000000, "MmSystemPtesStart"),
    SystemRegion("HAL heap", 0xFFFFFFFFFFC00000),
)


def map_system_regions(m: Machine) -> None:
    """Map each region's first page and point its global at it."""
    for region in REGIONS:
        m.system_space.ensure(region.va, 0x1000, KERNEL_DATA)
        if region.pointer and m.layout.has_symbol(region.pointer):
            va = m.symbol_va(region.pointer)
            m.system_space.ensure(va, 8, KERNEL_DATA)
            m.system_space.put_u64(va, region.va)
