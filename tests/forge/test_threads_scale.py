"""``forge(..., threads_scale=N)``: N times every process's threads, each clone a thread of its own.

The bench compares the plugins at 1x, 4x and 8x a scenario's threads; that comparison is only
honest if a scaled image really holds N times the threads (no shared TIDs, TEBs or stacks) and
every clone's stack passes the composer's self-check like any other.
"""

from __future__ import annotations

from collections import Counter

import pytest

from callstack_forensics.forge import forge, load_scenario
from callstack_forensics.forge.scale import scale_processes, scale_threads
from callstack_forensics.forge.scenario import ScenarioError

from .conftest import REPO

BENIGN = REPO / "samples" / "scenarios" / "benign_desktop.toml"


def _thread_count(scenario) -> int:
    return sum(sum(t.count for t in p.threads) + p.system_threads for p in scenario.processes)


def test_scaled_scenario_has_n_times_the_threads_with_ids_of_their_own():
    base = load_scenario(BENIGN)
    scaled = scale_threads(base, 8)
    assert _thread_count(scaled) == 8 * _thread_count(base)
    tids = [t.tid + 4 * n for p in scaled.processes for t in p.threads for n in range(t.count)]
    assert len(tids) == len(set(tids))
    assert not set(tids) & {p.pid for p in scaled.processes}
    for before, after in zip(base.processes, scaled.processes):
        assert after.threads[: len(before.threads)] == before.threads  # the scenario's own threads first
        assert Counter(t.stack for t in after.threads) == Counter({s: 8 * n for s, n in
                                                                   Counter(t.stack for t in before.threads).items()})


def test_scale_one_is_the_scenario_and_below_one_is_refused():
    base = load_scenario(BENIGN)
    assert scale_threads(base, 1) is base
    with pytest.raises(ScenarioError, match="at least 1"):
        scale_threads(base, 0)


def test_forged_scaled_image_has_distinct_threads_and_stacks(tmp_path):
    base = load_scenario(BENIGN)
    result = forge(BENIGN, tmp_path / "x2.raw", threads_scale=2)  # every clone's stack self-checked
    threads = [t for plan in result.plans for t in plan.threads]
    assert len(threads) == 2 * _thread_count(base)
    assert len({t.tid for t in threads}) == len(threads)
    user = [(plan.pid, t) for plan in result.plans for t in plan.threads if t.teb is not None]
    assert len({(pid, t.teb) for pid, t in user}) == len(user)  # addresses are per process
    assert len({(pid, t.stack_base) for pid, t in user}) == len(user)
    for plan, spec in zip(result.plans, base.processes):
        assert len(plan.threads) == 2 * (sum(t.count for t in spec.threads) + spec.system_threads)
        originals = plan.threads[: len(plan.threads) // 2]
        clones = plan.threads[len(plan.threads) // 2:]
        if spec.kernel:
            continue
        for original, clone in zip(originals, clones):
            assert clone.frames == original.frames
            assert clone.return_addresses[1:] == original.return_addresses[1:]  # the same call sites
            assert clone.context.rsp != original.context.rsp  # on a stack of its own


def test_processes_scale_clones_every_user_process_with_ids_of_its_own():
    base = load_scenario(BENIGN)
    scaled = scale_threads(scale_processes(base, 6), 4)
    users = [p for p in base.processes if not p.kernel]
    assert len(scaled.processes) == len(base.processes) + 5 * len(users)
    pids = [p.pid for p in scaled.processes]
    tids = [t.tid + 4 * n for p in scaled.processes for t in p.threads for n in range(t.count)]
    assert len(pids) == len(set(pids)) and len(tids) == len(set(tids)) and not set(pids) & set(tids)
    originals = {p.pid: p for p in base.processes}
    clones = scaled.processes[len(base.processes):]
    assert Counter(p.name for p in clones) == Counter({name: 5 * n for name, n in Counter(p.name for p in users).items()})
    assert all(p.ppid in originals or p.ppid == 0 or p.ppid not in pids for p in clones)  # same parents as the originals
    assert scale_processes(base, 1) is base
    with pytest.raises(ScenarioError):
        scale_processes(base, 0)
