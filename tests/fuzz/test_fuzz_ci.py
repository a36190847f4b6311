"""A CI-sized run of the engine fuzzer (`make fuzz` runs 100,000 cases), and the harness's own checks.

The run must find no crash and no hang and account for every case; the harness must notice a
crash and a hang when there is one (else a quiet fuzzer would pass for a robust engine), and
rebuild any case from its seed and index alone.
"""

from __future__ import annotations

import time

import pytest

from callstack_forensics.engine.context import WalkOptions

from . import engine
from .corpus import Corpus, build_corpus
from .counts import FuzzCounts
from .engine import EngineCase, run_engine, run_one

CI_CASES = 2_000
CI_SEED = 20240514


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return build_corpus()


def test_ci_run_finds_no_crash_or_hang_and_accounts_for_every_case(corpus):
    counts = run_engine(CI_CASES, CI_SEED, time.monotonic() + 900, corpus=corpus)
    failures = [f"{f.detail} -> {f.reproduce}" for f in counts.crashes + counts.hangs]
    assert failures == []
    assert not counts.stopped_early and counts.tried == CI_CASES
    assert counts.tried == counts.clean + counts.noted and counts.accounted
    assert {"stack", "wow64", "pe", "unwind"} <= set(counts.cases)
    assert counts.clean > CI_CASES // 10 and counts.noted > CI_CASES // 10  # the mutations bite, not always


def test_cases_are_rebuilt_from_seed_and_index(corpus):
    first, again = FuzzCounts(), FuzzCounts()
    for index in range(40):
        run_one(corpus, 7, index, WalkOptions(), first)
        run_one(corpus, 7, index, WalkOptions(), again)
    assert first.notes == again.notes and first.cases == again.cases and first.clean == again.clean


def test_the_harness_counts_a_crash_with_its_reproducer(corpus, monkeypatch):
    def crashing(corpus, seed, index, options):
        return EngineCase("stack", lambda: {}["no such key"])

    monkeypatch.setattr(engine, "make_case", crashing)
    counts = FuzzCounts()
    run_one(corpus, 3, 11, WalkOptions(), counts)
    [crash] = counts.crashes
    assert crash.detail.startswith("KeyError: 'no such key'")
    assert crash.reproduce == "python -m tests.fuzz --engine-case 11 --seed 3"
    assert counts.accounted and not counts.ok


def test_the_harness_counts_a_hang(corpus, monkeypatch):
    def looping(corpus, seed, index, options):
        def forever():
            while True:
                try:
                    sum(range(10_000))  # spins like a looping walk: the bound is on CPU time
                except Exception:  # like the engine's own catch-alls: a time-out must get through
                    pass
        return EngineCase("pe", forever)

    monkeypatch.setattr(engine, "make_case", looping)
    counts = FuzzCounts()
    start = time.monotonic()
    run_one(corpus, 3, 12, WalkOptions(), counts, case_seconds=0.2)
    assert time.monotonic() - start < 5
    assert len(counts.hangs) == 1 and counts.hangs[0].case == "pe" and counts.accounted


def test_merge_adds_up():
    a, b = FuzzCounts(), FuzzCounts()
    a.add_clean("stack")
    b.add_noted("pe", "pe note: x")
    b.add_noted("pe", "pe note: x")
    merged = a.merge(b)
    assert (merged.tried, merged.clean, merged.noted, merged.notes["pe note: x"]) == (3, 1, 2, 2)
    assert merged.accounted
