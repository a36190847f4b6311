"""The indexed region lookups give what a scan of every region gives, on any region list a source
may hand over: sorted or not, sections of one allocation apart from each other, allocation bases
shared by regions far apart (a hostile minidump says what it likes), regions without one."""

from __future__ import annotations

import random

from callstack_forensics.memory import RegionKind
from callstack_forensics.memory.interface import Region

from tests.engine.synth import SynthProcess

PAGE = 0x1000


def _regions(rng: random.Random) -> list[Region]:
    starts = rng.sample(range(0x10, 0x400), rng.randrange(0, 60))
    bases = [s * PAGE for s in starts[:5]] + [None]
    out = []
    for start in starts:
        size = rng.randrange(1, 8) * PAGE
        base = rng.choice(bases + [start * PAGE] * 3)
        out.append(Region(start * PAGE, start * PAGE + size, rng.choice(["R-X", "RW-", "RWX"]),
                          rng.choice(list(RegionKind)), rng.choice([None, "", r"\Windows\x.dll"]), base,
                          rng.choice([None, 0, 0x2000]), rng.choice([None, 0xFFFF8000AABB0000])))
    if rng.random() < 0.5:
        out.sort(key=lambda r: r.start)
    return out


class AsGiven(SynthProcess):
    """A source that lists its regions in its own order (the interface asks for sorted ones)."""

    def regions(self):
        return list(self._regions)


def _memory(regions: list[Region]) -> SynthProcess:
    memory = AsGiven()
    memory._regions = regions
    return memory


def test_regions_within_is_every_region_starting_in_the_range():
    rng = random.Random(6)
    for _ in range(500):
        regions = _regions(rng)
        memory = _memory(regions)
        for _ in range(10):
            start = rng.randrange(0, 0x420) * PAGE
            end = start + rng.randrange(0, 0x40) * PAGE
            expected = sorted((r for r in regions if start <= r.start < end), key=lambda r: r.start)
            assert memory.regions_within(start, end) == expected


def test_regions_of_an_allocation_are_the_scans_in_the_sources_order():
    rng = random.Random(7)
    for _ in range(500):
        regions = _regions(rng)
        memory = _memory(regions)
        for base in {r.allocation_base for r in regions} | {0x5000, None}:
            assert memory.regions_of_allocation(base) == [r for r in regions if r.allocation_base == base]
