"""Symbolization the way Elastic writes ``symbol_info``.

``c:\\windows\\system32\\ntdll.dll!NtCreateUserProcess+0x14``: the nearest
preceding export, but only when that export lies inside the function that
contains the address (bounds from ``.pdata``), because the nearest export of an
internal function is some unrelated API and naming it would mislead; otherwise
``path+0xOFFSET``. Private memory is ``Unbacked``; no information, ``Unknown``.
"""

from __future__ import annotations

from ..memory import Module, Region, RegionKind
from .pe import Export, PeImage, RuntimeFunction
from .stack import UNBACKED, UNKNOWN
from .unwind import MAX_CHAIN_DEPTH, UnwindError, parse_unwind_info, primary_entry


def root_function(image: PeImage, function: RuntimeFunction) -> RuntimeFunction:
    """Follow indirect entries and chained unwind info to the primary entry (a function's start);
    once per entry and image (``image.root_cache``)."""
    found = image.root_cache.get(function)
    if found is None:
        found = image.root_cache[function] = _root_function(image, function)
    return found


def _root_function(image: PeImage, function: RuntimeFunction) -> RuntimeFunction:
    current = function
    for _ in range(MAX_CHAIN_DEPTH):
        try:
            current = primary_entry(image, current)
            info = parse_unwind_info(image, current.unwind)
        except UnwindError:
            return current
        if info.chained is None:
            return current
        current = info.chained
    return current


def export_for(image: PeImage, rva: int) -> Export | None:
    """The nearest preceding export when it lies in the same function as ``rva``; once per RVA
    and image (``image.export_cache``)."""
    cache = image.export_cache
    if rva not in cache:
        cache[rva] = _export_for(image, rva)
    return cache[rva]


def _export_for(image: PeImage, rva: int) -> Export | None:
    export = image.export_at_or_before(rva)
    if export is None:
        return None
    here = image.function_at(rva)
    there = image.function_at(export.rva)
    if here is not None:
        if there is None or root_function(image, here).begin != root_function(image, there).begin:
            return None
        return export
    # A leaf without unwind data (e.g. a syscall stub): the export names it only if it is a
    # leaf too and no function with unwind data starts between the two.
    if there is not None or image.function_begins_between(export.rva, rva):
        return None
    return export


def format_offset(offset: int) -> str:
    return f"+{offset:#x}" if offset else ""


def symbolize(
    address: int,
    lookup: int,
    module: Module | None,
    image: PeImage | None,
    region: Region | None,
) -> str:
    """``symbol_info`` for ``address``; ``lookup`` is the address used to find the
    function (return address - 1 for callers, so a call at a function's very end
    is attributed to the caller, not to the next function)."""
    if module is not None:
        path = module.path.lower()
        if image is not None:
            export = export_for(image, lookup - module.base)
            if export is not None:
                offset = address - module.base - export.rva
                return f"{path}!{export.name}{format_offset(offset)}"
        return f"{path}+{address - module.base:#x}"
    if region is not None:
        if region.kind == RegionKind.PRIVATE or (region.kind == RegionKind.MAPPED and not region.path):
            return UNBACKED
        if region.kind in (RegionKind.MAPPED, RegionKind.IMAGE) and region.path:
            # a file mapping, or an image no module list names: the region still says which file
            base = region.allocation_base if region.allocation_base is not None else region.start
            return f"{region.path.lower()}+{address - base:#x}"
    return UNKNOWN
