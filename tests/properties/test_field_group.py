"""FieldGroup gives exactly Field.get's values: plain members, bit fields, signed ones, pointer
masks, members sharing bytes, overlapping pieces, gaps, and buffers too short for the group."""

from __future__ import annotations

import random

from callstack_forensics.volatility.rawstructs import Field, FieldGroup


def _field(rng: random.Random) -> Field:
    length = rng.choice([1, 2, 4, 8, 8, 3, 16])
    offset = rng.randrange(0, 0x40)
    signed = rng.random() < 0.3
    if rng.random() < 0.4:
        start = rng.randrange(0, length * 8)
        return Field(offset, length, signed, start, rng.randrange(start + 1, length * 8 + 1))
    mask = rng.choice([None, None, (1 << 48) - 1, 0xFFFFFFFF])
    return Field(offset, length, signed, None, 0, mask)


def test_every_value_is_field_gets():
    rng = random.Random(2026)
    grouped = 0
    for _ in range(3000):
        fields = [_field(rng) for _ in range(rng.randrange(1, 9))]
        if rng.random() < 0.5:  # members sharing their bytes, as a flags word's bit fields do
            base = fields[0]
            fields.append(Field(base.offset, base.length, base.signed, 0, 1))
        origin = min(f.offset for f in fields) - rng.choice([0, 0, 0, 4])
        group = FieldGroup([(f"m{i}", f) for i, f in enumerate(fields)], origin)
        grouped += group._struct is not None
        end = max(f.offset + f.length for f in fields)
        for size in (end - origin, end - origin + 5, max(0, end - origin - rng.randrange(1, 9))):
            data = bytes(rng.getrandbits(8) for _ in range(size))
            expected = [f.get(data, origin) for f in fields]
            assert group.values(data) == expected, (fields, origin, size)
            assert group.read(data) == {f"m{i}": value for i, value in enumerate(expected)}
    assert 300 < grouped < 3000, "both the unpacked and the member-by-member paths are exercised"
