"""Fallback scan: climb the stack for values that are return addresses after a verified call.

Used only where unwinding cannot go on (code without unwind data that moved the
stack pointer, an unreadable page, garbage registers). Requiring a decoded call
that ends exactly at the value keeps stale data and pointers to code (function
pointers, vtables) out; frames found this way say ``scanned``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .context import ProcessContext


@dataclass(frozen=True, slots=True)
class ScanHit:
    slot: int  # stack address holding the return address
    value: int


def scan_for_return(
    ctx: ProcessContext,
    start: int,
    stop: int,
    bits: int = 64,
    skip: frozenset[int] = frozenset(),
) -> tuple[ScanHit | None, int]:
    """First slot in ``[start, stop)`` holding a verified return address, and bytes scanned."""
    width = bits // 8
    slot = (start + width - 1) & ~(width - 1)
    scanned = 0
    while slot + width <= stop:
        raw = ctx.cache.try_read(slot, width)
        scanned += width
        if raw is None:
            # skip to the next page: a missing page holds nothing we can check
            slot = (slot & ~0xFFF) + 0x1000
            continue
        value = int.from_bytes(raw, "little")
        if value > 0x10000 and value not in skip and ctx.is_code(value):
            if ctx.call_before(value, bits) is not None:
                return ScanHit(slot, value), scanned
        slot += width
    return None, scanned
