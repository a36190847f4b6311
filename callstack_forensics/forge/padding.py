"""A process brought up to a real host's weight (``host_weight``): filler modules, VADs, heap.

Runs last on a process's layout, once everything the scenario names has its address, so the
scenario's own layout is exactly what it is without the weight: the additions take addresses
nothing else uses (the filler bases, the heap's fixed address, one block of free space).
"""

from __future__ import annotations

import struct
from dataclasses import replace
from typing import Callable

from .addresses import GRANULARITY
from .host_weight import (DATA_FILES, FILLER_NAMES, FILLER_TEMPLATE, HEAP_BASE, HEAP_SEGMENT, MAPPED_VIEW,
                          PADDING_RESERVE, PAGE, ProcessWeight, filler_base, filler_timestamp, heap_page)
from .modules import Catalog, MappedImage, bind_imports
from .plan import LoadedModule, PageWrite, ProcessPlan, VadPlan
from .vad import MM_PROTECTION, nt_file_name

SYSTEM32 = "C:\\Windows\\System32\\"


def add_weight(plan: ProcessPlan, images: dict[str, MappedImage], reserve: Callable[[int, int, str], None],
               alloc: Callable[[int, str], int], catalog: Catalog, weight: ProcessWeight,
               loaded: Callable[[MappedImage], LoadedModule], heap_pages: dict[int, bytes]) -> None:
    """Bring ``plan`` up to ``weight``. ``images`` are its 64-bit modules by name (none for a WOW64
    process: its weight is VADs only), ``reserve``/``alloc`` its address space, ``heap_pages``
    the heap's page contents by index, shared by every process of the image."""
    if images:
        _filler_modules(plan, images, reserve, catalog, weight.modules, loaded)
        _heap(plan, reserve, weight.heap_kib * 1024 // PAGE, heap_pages)
    _plain_vads(plan, alloc, weight.vads - len(plan.vads))


def _filler_modules(plan: ProcessPlan, images: dict[str, MappedImage], reserve: Callable[[int, int, str], None],
                    catalog: Catalog, count: int, loaded: Callable[[MappedImage], LoadedModule]) -> None:
    template = catalog.get(FILLER_TEMPLATE)
    have = {module.path.rsplit("\\", 1)[-1].lower() for module in plan.modules}
    wanted = [(i, name) for i, name in enumerate(FILLER_NAMES) if name not in have][:max(0, count - len(plan.modules))]
    for index, name in wanted:
        image = catalog.map(template, filler_base(index), SYSTEM32 + name)
        _stamp(image, filler_timestamp(index))
        reserve(image.base, image.size, f"filler module {name}")
        bind_imports(image, images)
        plan.modules.append(replace(loaded(image), source=None))  # no file on disk is this build
        plan.writes.extend(image.page_writes())
        plan.vads.append(VadPlan(image.base, image.end - 1, MM_PROTECTION["RCX"], False, "image",
                                 nt_file_name(image.path), commit_pages=0, label=f"filler {name}"))


def _stamp(image: MappedImage, timestamp: int) -> None:
    """The module's own build: its PE header's TimeDateStamp and the loader entry's agree."""
    e_lfanew = struct.unpack_from("<I", image.data, 0x3C)[0]
    struct.pack_into("<I", image.data, e_lfanew + 8, timestamp)
    image.timestamp = timestamp


def _heap(plan: ProcessPlan, reserve: Callable[[int, int, str], None], pages: int,
          contents: dict[int, bytes]) -> None:
    """Heap segments at the heap's fixed address, their first pages written."""
    per_segment = HEAP_SEGMENT // PAGE
    for segment in range((pages + per_segment - 1) // per_segment):
        base = HEAP_BASE + segment * HEAP_SEGMENT
        written = min(per_segment, pages - segment * per_segment)
        reserve(base, HEAP_SEGMENT, "heap segment")
        for page in range(written):
            index = segment * per_segment + page
            if index not in contents:
                contents[index] = heap_page(index, base)
            plan.writes.append(PageWrite(base + page * PAGE, contents[index], writable=True, dirty=True,
                                         share=f"heap/{index}"))
        plan.vads.append(VadPlan(base, base + HEAP_SEGMENT - 1, MM_PROTECTION["RW-"], True, "private",
                                 commit_pages=written, label="heap segment"))


def _plain_vads(plan: ProcessPlan, alloc: Callable[[int, str], int], count: int) -> None:
    """Reserved private ranges and mapped data-file views (one in four), in one block of free space."""
    if count <= 0:
        return
    sizes = [MAPPED_VIEW if n % 4 == 3 else PADDING_RESERVE for n in range(count)]
    cursor = alloc(sum(size + GRANULARITY for size in sizes), "VADs of a real host's weight")
    for n, size in enumerate(sizes):
        if size == MAPPED_VIEW:
            path = DATA_FILES[(n // 4) % len(DATA_FILES)]
            plan.vads.append(VadPlan(cursor, cursor + size - 1, MM_PROTECTION["R--"], False, "mapped",
                                     nt_file_name(path), commit_pages=0, label=f"view of {path}"))
        else:
            plan.vads.append(VadPlan(cursor, cursor + size - 1, MM_PROTECTION["RW-"], True, "private",
                                     commit_pages=0, label="reserved"))
        cursor += size + GRANULARITY
