"""The engine half of the mutation fuzzer: hostile stacks, PEs and unwind records, straight into the engine.

Case ``i`` of seed ``s`` draws everything from ``random.Random(f"engine:{s}:{i}")``: which kind of
case, which genuine material, which mutations. Kinds:

- ``stack``: a thread of the x64 base process (genuine stacks over the sample modules),
  stack pages and registers corrupted, walked;
- ``wow64``: the same for a WOW64 thread (its 64-bit and 32-bit stacks, its 32-bit context);
- ``minidump``: the same for a thread of a Wine capture, when captures have been built;
- ``pe``: a sample module corrupted (headers, exports, ``.pdata``, UNWIND_INFO, truncation),
  parsed, probed and, when a base process loads it, walked through;
- ``unwind``: raw UNWIND_INFO records, chained, unwound from random places.

Each case runs under a CPU-time bound (SIGPROF); an exception the engine does not document is a crash,
running out of time a hang, both reported with the seed and index that rebuild the case.
"""

from __future__ import annotations

import gc
import random
import time
import traceback
from dataclasses import dataclass
from typing import Callable

from callstack_forensics.engine.context import WalkOptions

from .corpus import Corpus, build_corpus
from .counts import Failure, FuzzCounts
from .pe_cases import run_pe_case
from .stack_cases import run_stack_case
from .timeout import CaseTimeout, time_limit
from .unwind_cases import run_unwind_case

CASE_SECONDS = 2.0
MAX_DETAIL = 200
WEIGHTS = {"stack": 38, "wow64": 12, "minidump": 0, "pe": 30, "unwind": 20}
MINIDUMP_SHARE = 10  # taken from ``stack`` when captures exist


@dataclass(frozen=True, slots=True)
class EngineCase:
    kind: str
    run: Callable[[], str | None]  # None: clean; else the note kind


def case_rng(seed: int, index: int) -> random.Random:
    return random.Random(f"engine:{seed}:{index}")


def make_case(corpus: Corpus, seed: int, index: int, options: WalkOptions) -> EngineCase:
    """Case ``index`` of ``seed``: the same case every time, on the same corpus."""
    rng = case_rng(seed, index)
    weights = dict(WEIGHTS)
    if corpus.dumps:
        weights["stack"] -= MINIDUMP_SHARE
        weights["minidump"] = MINIDUMP_SHARE
    kind = rng.choices(list(weights), list(weights.values()))[0]
    if kind == "stack":
        return EngineCase(kind, lambda: run_stack_case(rng, corpus.x64, options, "stack"))
    if kind == "wow64":
        return EngineCase(kind, lambda: run_stack_case(rng, corpus.wow64, options, "wow64"))
    if kind == "minidump":
        return EngineCase(kind, lambda: run_stack_case(rng, rng.choice(corpus.dumps), options, "minidump"))
    if kind == "pe":
        return EngineCase(kind, lambda: run_pe_case(rng, corpus, options))
    return EngineCase(kind, lambda: run_unwind_case(rng, corpus))


def run_engine(count: int, seed: int, deadline: float, corpus: Corpus | None = None,
               case_seconds: float = CASE_SECONDS, options: WalkOptions | None = None) -> FuzzCounts:
    """Try ``count`` cases (fewer if ``deadline``, a ``time.monotonic()`` value, comes first)."""
    corpus = corpus or build_corpus()
    options = options or WalkOptions()
    counts = FuzzCounts()
    start = time.monotonic()
    # what the process held before the run (a whole test session's objects, under pytest) is
    # set aside from the collector: a full collection of it inside a case is not the case's time
    gc.collect()
    gc.freeze()
    try:
        for index in range(count):
            if time.monotonic() >= deadline:
                counts.stopped_early = True
                break
            run_one(corpus, seed, index, options, counts, case_seconds)
    finally:
        gc.unfreeze()
    counts.seconds = time.monotonic() - start
    return counts


def run_one(corpus: Corpus, seed: int, index: int, options: WalkOptions, counts: FuzzCounts,
            case_seconds: float = CASE_SECONDS) -> None:
    case = make_case(corpus, seed, index, options)
    start = time.perf_counter()
    try:
        with time_limit(case_seconds):
            kind = case.run()
    except CaseTimeout as exc:
        counts.add_hang(Failure("engine", case.kind, seed, index, f"{exc} ({_where(exc)})"))
    except Exception as exc:  # the point: anything the engine does not document is a crash
        message = f"{type(exc).__name__}: {exc}"
        if len(message) > MAX_DETAIL:
            message = message[: MAX_DETAIL - 1] + "…"
        counts.add_crash(Failure("engine", case.kind, seed, index, f"{message} ({_where(exc)})"))
    else:
        counts.timed(time.perf_counter() - start, Failure("engine", case.kind, seed, index, "").reproduce)
        if kind is None:
            counts.add_clean(case.kind)
        else:
            counts.add_noted(case.kind, kind)


def replay(seed: int, index: int, corpus: Corpus | None = None) -> str | None:
    """Run one case without catching anything: the traceback of a crash, for debugging."""
    corpus = corpus or build_corpus()
    return make_case(corpus, seed, index, WalkOptions()).run()


def _where(exc: BaseException) -> str:
    """The innermost frame of the traceback inside the engine (else the innermost at all)."""
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if "callstack_forensics" in f.filename]
    frame = (inside or frames or [None])[-1]
    if frame is None:
        return "?"
    path = frame.filename.split("callstack_forensics/")[-1] if "callstack_forensics" in frame.filename \
        else frame.filename.rsplit("/", 1)[-1]
    return f"{path}:{frame.lineno} in {frame.name}"
