"""Which pages the CONTEXT-record scan searches: those with a target where a 16-aligned record's
RIP lies (offset 8 mod 16), a page it could not read whole, and nothing else. The byte filter in
front of the plain test never changes its answer: random stack-like pages, with and without a
target planted, some with near misses (a target's high bytes, a target one byte off)."""

from __future__ import annotations

import random
import struct

from callstack_forensics.hunt.contexts import CONTEXT_RIP, RipValues, _may_hold_record
from callstack_forensics.memory import PAGE_SIZE

TARGET = 0x7FFA12345678


def _page_with(value: int, at: int) -> bytes:
    page = bytearray(PAGE_SIZE)
    struct.pack_into("<Q", page, at, value)
    return bytes(page)


def test_a_target_at_a_records_rip_offset_is_searched_and_elsewhere_it_is_not():
    targets = RipValues.of({TARGET})
    assert _may_hold_record(_page_with(TARGET, 0x200 + CONTEXT_RIP), targets)
    assert not _may_hold_record(_page_with(TARGET, 0x200 + CONTEXT_RIP + 8), targets)
    assert not _may_hold_record(_page_with(TARGET + 1, 0x200 + CONTEXT_RIP), targets)


def test_a_zero_page_holds_no_record_unless_a_target_is_zero():
    assert not _may_hold_record(bytes(PAGE_SIZE), RipValues.of({TARGET}))
    assert _may_hold_record(bytes(PAGE_SIZE), RipValues.of({TARGET, 0}))


def test_a_page_not_read_whole_is_always_searched():
    assert _may_hold_record(bytes(PAGE_SIZE - 8), RipValues.of({TARGET}))


def _stack_like(rng: random.Random, targets: list[int]) -> bytes:
    """Zeros, small integers, stack pointers, addresses near the targets (same module, same
    high bytes), targets with one low byte changed, and now and then a target itself."""
    words = []
    for _ in range(PAGE_SIZE // 8):
        roll = rng.random()
        target = rng.choice(targets)
        if roll < 0.25:
            words.append(0)
        elif roll < 0.4:
            words.append(rng.randrange(1 << 16))
        elif roll < 0.55:
            words.append(0xA1F000 + rng.randrange(0x1000))
        elif roll < 0.8:
            words.append((target & ~0xFFFFF) | rng.randrange(0x100000))
        elif roll < 0.95:
            byte = rng.randrange(6)
            words.append(target ^ (rng.randrange(1, 256) << (8 * byte)))
        elif roll < 0.96:
            words.append(target)
        else:
            words.append(rng.getrandbits(64))
    return struct.pack(f"<{len(words)}Q", *words)


def test_the_byte_filter_gives_the_plain_tests_answer():
    rng = random.Random(2026)
    answers = set()
    for _ in range(400):
        targets = [rng.choice([0x7FFA0000_0000, 0x7FF8_1230_0000, 0x1_4000_0000]) + rng.randrange(1 << 22)
                   for _ in range(rng.randrange(1, 24))]
        page = _stack_like(rng, targets)
        plain = not frozenset(targets).isdisjoint(memoryview(page).cast("Q")[1::2])
        assert _may_hold_record(page, RipValues.of(targets)) == plain
        answers.add(plain)
    assert answers == {True, False}
