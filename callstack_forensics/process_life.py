"""The collector at a process's start and end, for processes that import Dask, Volatility and the
analysis (the CLI, the fleet's fork server).

Start: importing them makes ~80,000 objects the collector tracks, none of them garbage, and its
passes over them during the imports are pure cost (~15% of the imports' time, ~0.05 s per
process). :func:`collector_paused` turns it off for the imports and back on after, so the
analysis (which paces it itself, see ``analysis.collector``) always runs with it on.

End: at exit Python tears the module graph down and runs the collector over everything still
alive: ~0.13 s, paid by the CLI after its work is done and by the fleet's fork server after the
CLI (a caller that reads the CLI's output through a pipe waits for both). :func:`freeze_at_exit`
moves what is alive into the collector's permanent generation first, which skips that scan.
Nothing is lost: the handler runs after every other exit handler (files, logging, Dask,
multiprocessing), it first collects the garbage that exists (the finalizers of objects in
reference cycles run, as at a normal exit), and objects are still freed as their modules are
torn down.
"""

from __future__ import annotations

import atexit
import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def collector_paused() -> Iterator[None]:
    """The block (start-up imports) without the cyclic collector; it is on again after, as the
    caller had it."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def freeze_at_exit() -> None:
    """Register the freeze, once however often it is asked for (a plugin run many times in one
    process); called first thing, it runs last (exit handlers run in reverse)."""
    atexit.unregister(_collect_and_freeze)
    atexit.register(_collect_and_freeze)


def _collect_and_freeze() -> None:
    gc.collect()
    gc.freeze()
