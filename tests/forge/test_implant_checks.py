"""The implant checks on forged processes, straight through the engine (no Volatility).

Each scenario of issue 15's stack checks is forged, and its process handed to the walker as the
forge built it: the stack verdict must name exactly the check the scenario stages (and the near
miss none), the CONTEXT-record scan must find the sleep-obfuscation chain and nothing in the
near miss, and the in-image prevalence must count shared shapes. The same scenarios run through
`vol ... callstacks.detect` in tests/plugins (their `expect`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from callstack_forensics.engine.context import ProcessContext, WalkOptions
from callstack_forensics.engine.modules import ImageCache
from callstack_forensics.engine.walker import walk_thread
from callstack_forensics.forge import forge
from callstack_forensics.hunt.contexts import find_context_records
from callstack_forensics.hunt.prevalence import ShapeCounts, stack_shape

from .forged_memory import ForgedProcessMemory

SCENARIOS = Path(__file__).resolve().parents[2] / "samples" / "scenarios"
PID = 5208


@pytest.fixture(scope="module")
def forged(tmp_path_factory):
    folder = tmp_path_factory.mktemp("implants")
    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = forge(SCENARIOS / f"{name}.toml", folder / f"{name}.raw", ram="128M")
        return cache[name]

    return get


def process(result, pid: int = PID) -> tuple[ProcessContext, ForgedProcessMemory]:
    [plan] = [p for p in result.plans if p.pid == pid]
    memory = ForgedProcessMemory(result, plan)
    return ProcessContext(memory, WalkOptions(), ImageCache()), memory


def every_stack(result) -> list:
    """Every thread of every process of the image, walked (each process with its own context)."""
    stacks = []
    for plan in result.plans:
        ctx, memory = process(result, plan.pid)
        stacks += [walk_thread(ctx, t) for t in memory.threads()]
    return stacks


def verdicts(result) -> dict[int, set[str]]:
    ctx, memory = process(result)
    return {t.tid: {f.check for f in walk_thread(ctx, t).integrity} for t in memory.threads()}


@pytest.mark.parametrize("scenario, expected", [
    ("sleeping_implant_rw", {5212: {"return_into_non_executable"}, 5216: set()}),
    ("stack_spoofing", {5212: {"call_gadget"}, 5216: {"abnormal_intermodular_call"}}),
    ("truncated_stack", {5212: {"truncated"}}),
    ("remote_thread_loadlibrary", {5212: {"suspicious_start"}, 5216: {"suspicious_start"}}),
    ("stack_pivot", {5212: {"stack_pivot"}}),
])
def test_each_staged_implant_fails_exactly_its_check(forged, scenario, expected):
    assert verdicts(forged(scenario)) == expected


@pytest.mark.parametrize("scenario", ["sleeping_implant_rw_near_miss", "stack_spoofing_near_miss",
                                      "truncated_stack_near_miss", "remote_thread_loadlibrary_near_miss",
                                      "sleep_obfuscation_contexts_near_miss"])
def test_near_misses_are_clean(forged, scenario):
    assert all(not checks for checks in verdicts(forged(scenario)).values())


def test_every_thread_of_the_benign_desktop_is_clean(forged):
    failures = [(s.pid, s.tid, f.check) for s in every_stack(forged("benign_desktop")) for f in s.integrity]
    assert failures == []


def test_the_sleep_obfuscation_chain_is_found_on_the_sleeping_thread(forged):
    ctx, memory = process(forged("sleep_obfuscation_contexts"))
    scan = find_context_records(ctx, memory.threads())
    assert scan.note is None
    assert sorted(r.symbol for r in scan.records) == [
        "advapi32.dll!SystemFunction032", "kernelbase.dll!VirtualProtect", "kernelbase.dll!WaitForSingleObjectEx",
        "ntdll.dll!NtContinue"]
    assert {r.tid for r in scan.records} == {5212}
    assert all(r.address % 16 == 0 and r.region.startswith("private") for r in scan.records)


def test_a_context_record_resuming_ordinary_code_is_no_chain(forged):
    ctx, memory = process(forged("sleep_obfuscation_contexts_near_miss"))
    assert find_context_records(ctx, memory.threads()).records == []


def test_prevalence_counts_shared_shapes_and_says_which_stack_is_unique(forged):
    stacks = every_stack(forged("remote_thread_loadlibrary"))
    counts = ShapeCounts(stacks)
    [loader] = [s for s in stacks if s.pid == PID and s.tid == 5212]
    assert counts.of(loader).unique and counts.of(loader).processes == 1
    idle = [s for s in stacks if s.frames and stack_shape(s.frames)[:2] == (
        "ntdll.dll!NtWaitForWorkViaWorkerFactory", "ntdll.dll!TppWorkerThread")]
    assert len(idle) > 10
    shared = counts.of(idle[0])
    assert shared.threads == len(idle) and shared.processes == len({s.pid for s in idle}) > 1 and not shared.unique


def test_the_benign_desktop_at_eight_times_its_threads_stays_silent(tmp_path):
    """The implant rules and the verdict, through the CLI on a Volatility-read image: eight times the
    benign desktop's threads (each clone with a stack of its own) raise nothing."""
    import json
    import subprocess
    import sys

    image = tmp_path / "benign8.raw"
    forge(SCENARIOS / "benign_desktop.toml", image, threads_scale=8, ram="256M")
    cli = Path(sys.executable).parent / "callstack-forensics"
    done = subprocess.run([str(cli), "analyze", str(image), "--symbols", str(tmp_path / "symbols"), "--json",
                           "--quiet", "--cache-dir", str(tmp_path / "cache")], capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stderr[-2000:]
    analysis = json.loads(done.stdout)
    assert analysis["findings"] == []
    stacks = [s for p in analysis["processes"] for s in p.get("stacks", [])]
    assert len(stacks) > 1000
    assert all(s["stack_integrity"]["verdict"] == "clean" for s in stacks)


def test_a_stack_the_counts_did_not_see_is_looked_up_by_its_shape(forged):
    import copy

    stacks = every_stack(forged("remote_thread_loadlibrary"))
    counts = ShapeCounts(stacks)
    seen = next(s for s in stacks if s.frames and not counts.of(s).unique)
    twin = copy.copy(seen)  # the same frames, another object
    assert counts.of(twin) == counts.of(seen) and counts.of(twin).threads > 1
