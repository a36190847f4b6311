"""The cyclic garbage collector paced for an analysis: young collections rarer, full ones rarer still.

Why: an analysis builds many small objects that live until its end (frames, events, regions,
translations, Volatility's objects), and at CPython's default pace (a young collection every 700
allocations, a full one every 100 of those) each full collection walks all of them again: on an
image of 1,600 threads that was ~15% of the run's CPU, growing with the threads. Almost nothing
the analysis frees is a cycle (reference counting frees it at once), so collecting 70 times less
often costs no memory that matters (measured: under 1%).

The pace is the process's, not the analysis's: it is set for the analysis and put back after it.
Two analyses at once in one process (a fleet worker's threads) may leave the slower pace set when
the later one ends, which is harmless.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator

ANALYSIS_THRESHOLDS = (50_000, 20, 100)  # gen0 allocations, gen0 passes per gen1, gen1 per gen2


@contextmanager
def paced_collector() -> Iterator[None]:
    """Run the block with the collector at :data:`ANALYSIS_THRESHOLDS` (never faster than the
    caller had it), then restore the caller's pace."""
    before = gc.get_threshold()
    paced = tuple(max(now, wanted) for now, wanted in zip(before, ANALYSIS_THRESHOLDS))
    gc.set_threshold(*paced)
    try:
        yield
    finally:
        gc.set_threshold(*before)
