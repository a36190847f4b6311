"""``present_ranges`` (the page tables read a table at a time) never leaves out a page ``read`` serves.

The CONTEXT-record scan reads only the pages it names, so a page left out would be a record
never found: here every page of every private region of a forged image is read one by one, as
the scan did before, and each readable one must lie in a candidate range; Volatility's own
mapping walk (the fallback) must name the same pages.
"""

from __future__ import annotations

from callstack_forensics.memory import MemoryMissing, RegionKind
from callstack_forensics.volatility.adapter import coalesce
from callstack_forensics.volatility.session import VolatilitySettings, open_image


def _pages(ranges) -> set[int]:
    return {page for low, high in ranges for page in range(low, high, 0x1000)}


def test_every_readable_private_page_is_a_candidate(scenario_image):
    image = scenario_image("sleep_obfuscation_contexts")
    source = open_image(image, VolatilitySettings(symbols=[image.parent / "symbols"]), lambda *_: None)
    checked = 0
    for opened in source.processes():
        memory = opened.memory
        if memory is None:
            continue
        for region in memory.regions():
            if region.kind is not RegionKind.PRIVATE:
                continue
            candidates = _pages(memory.present_ranges(region.start, region.end))
            mapped = _pages(coalesce((offset, offset + length) for offset, length, *_ in
                                     memory._layer.mapping(region.start, region.end - region.start, ignore_errors=True)))
            assert candidates >= mapped
            for page in range(region.start, region.end, 0x1000):
                try:
                    memory.read(page, 0x1000)
                except MemoryMissing:
                    continue
                assert page in candidates, f"{opened.info.name}: {page:#x} reads but is no candidate"
                checked += 1
    assert checked > 100
