"""A region's part (an image VAD's section) keeps every field of the region but its span and
protection, whatever fields Region has."""

from __future__ import annotations

import dataclasses

from callstack_forensics.memory import Region, RegionKind


def test_a_part_keeps_every_other_field():
    region = Region(0x7FFA0000, 0x7FFB0000, "RWX", RegionKind.IMAGE, "C:\\Windows\\System32\\ntdll.dll",
                    0x7FFA0000, 0x3000, 0xFFFF800012345670)
    assert all(getattr(region, f.name) is not None for f in dataclasses.fields(Region)), "every field set"
    part = region.part(0x7FFA1000, 0x7FFA8000, "R-X")
    assert part == dataclasses.replace(region, start=0x7FFA1000, end=0x7FFA8000, protection="R-X")
