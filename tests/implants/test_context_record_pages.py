"""Which pages the CONTEXT-record scan searches: those with a target where a 16-aligned record's
RIP lies (offset 8 mod 16), a page it could not read whole, and nothing else."""

from __future__ import annotations

import struct

from callstack_forensics.hunt.contexts import CONTEXT_RIP, _may_hold_record
from callstack_forensics.memory import PAGE_SIZE

TARGET = 0x7FFA12345678


def _page_with(value: int, at: int) -> bytes:
    page = bytearray(PAGE_SIZE)
    struct.pack_into("<Q", page, at, value)
    return bytes(page)


def test_a_target_at_a_records_rip_offset_is_searched_and_elsewhere_it_is_not():
    targets = frozenset({TARGET})
    assert _may_hold_record(_page_with(TARGET, 0x200 + CONTEXT_RIP), targets)
    assert not _may_hold_record(_page_with(TARGET, 0x200 + CONTEXT_RIP + 8), targets)
    assert not _may_hold_record(_page_with(TARGET + 1, 0x200 + CONTEXT_RIP), targets)


def test_a_zero_page_holds_no_record_unless_a_target_is_zero():
    assert not _may_hold_record(bytes(PAGE_SIZE), frozenset({TARGET}))
    assert _may_hold_record(bytes(PAGE_SIZE), frozenset({TARGET, 0}))


def test_a_page_not_read_whole_is_always_searched():
    assert _may_hold_record(bytes(PAGE_SIZE - 8), frozenset({TARGET}))
