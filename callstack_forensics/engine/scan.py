"""Fallback scan: climb the stack for the next return address when unwinding cannot go on.

Used only where unwinding cannot go on (code without unwind data that moved the stack
pointer, an unreadable page, garbage registers). A candidate is a stack value in code (or
memory of unknown kind) that follows a call capstone decodes as ending exactly there: that
keeps pointers to code (function pointers, vtables) out. Stale values, return addresses of
calls that already returned, pass that test too; what tells them apart is where their call
went. The rule, from how real stacks look:

1. A candidate whose call leads to the function of the frame above (directly, through an
   import or a jump-only thunk: :mod:`.consistency`) is taken at once: trust ``high``.
2. A candidate whose call target or callee cannot be determined (a call through a register,
   a callee whose bytes are not in the source) is taken too: trust ``medium``.
3. A candidate whose call provably leads elsewhere is skipped: stale. If the next
   :data:`LOOKAHEAD` candidates are all like it, the first is taken after all, trust ``low``
   (a tail call leaves its caller's return address pointing at another function), unless
   its value already is a frame of this stack: a stale copy of a return address repeats
   one; recursion, which repeats legitimately, leads to itself and is rule 1. For the same
   reason a candidate equal to the frame right above it is skipped unless rule 1 holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

from .callsite import CallSite
from .consistency import call_leads_to
from .context import ProcessContext
from .stack import Frame, Trust

LOOKAHEAD = 8  # inconsistent candidates examined before the first of them is taken


@dataclass(frozen=True, slots=True)
class ScanHit:
    slot: int  # stack address holding the return address
    value: int
    site: CallSite | None = None


@dataclass(frozen=True, slots=True)
class ScanChoice:
    hit: ScanHit
    trust: Trust
    consistent: bool | None


def iter_returns(ctx: ProcessContext, start: int, stop: int, bits: int = 64, counter: list[int] | None = None) -> Iterator[ScanHit]:
    """Every slot in ``[start, stop)`` holding a value after a verified call, lowest first;
    ``counter[0]`` grows by the bytes scanned."""
    width = bits // 8
    slot = (start + width - 1) & ~(width - 1)
    while slot + width <= stop:
        raw = ctx.cache.try_read(slot, width)
        if counter is not None:
            counter[0] += width
        if raw is None:
            # skip to the next page: a missing page holds nothing we can check
            slot = (slot & ~0xFFF) + 0x1000
            continue
        value = int.from_bytes(raw, "little")
        if value > 0x10000 and ctx.code_state(value) is not False:
            site = ctx.call_before(value, bits)
            if site is not None:
                yield ScanHit(slot, value, site)
        slot += width


def scan_for_return(ctx: ProcessContext, start: int, stop: int, bits: int = 64) -> tuple[ScanHit | None, int]:
    """First slot in ``[start, stop)`` holding a verified return address, and bytes scanned."""
    counter = [0]
    hit = next(iter_returns(ctx, start, stop, bits, counter), None)
    return hit, counter[0]


def choose_return(
    ctx: ProcessContext, start: int, stop: int, frames: Sequence[Frame], bits: int = 64
) -> tuple[ScanChoice | None, int]:
    """The next frame by the module's rule, and the bytes scanned to find it."""
    counter = [0]
    above = frames[-1]
    values = {f.address for f in frames}
    fallback: ScanHit | None = None
    skipped = 0
    for hit in iter_returns(ctx, start, stop, bits, counter):
        consistent = call_leads_to(ctx, hit.site.target if hit.site else None, above, bits)
        if hit.value == above.address and consistent is not True:
            continue  # a copy of the frame above, not recursion (that leads to itself): stale
        if consistent is not False:
            return ScanChoice(hit, Trust.HIGH if consistent else Trust.MEDIUM, consistent), counter[0]
        if fallback is None and hit.value not in values:
            fallback = hit
        skipped += 1
        if skipped >= LOOKAHEAD:
            break
    if fallback is None:
        return None, counter[0]
    return ScanChoice(fallback, Trust.LOW, False), counter[0]
