"""``forge(..., host_weight=True)``: every user process as heavy as a real host's, and nothing else changed.

The real-size benchmark is only worth its figures if its processes hold what real ones hold
(tens of modules, hundreds of VADs, megabytes of written heap), as stock Volatility and MemProcFS
read them; and the weight must not change a single stack, or the detections, of the scenario.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from callstack_forensics.forge import forge
from callstack_forensics.forge.host_weight import FILLER_NAMES, PAGE, weight_of

from .conftest import REPO
from .test_memprocfs import Seen, _read, check_modules
from .volrun import run_vol

BENIGN = REPO / "samples" / "scenarios" / "benign_desktop.toml"
CLI = [str(Path(sys.executable).parent / "callstack-forensics")]


@pytest.fixture(scope="module")
def forged(tmp_path_factory):
    folder = tmp_path_factory.mktemp("host-weight")
    return (forge(BENIGN, folder / "light" / "benign.raw"),
            forge(BENIGN, folder / "heavy" / "benign.raw", host_weight=True))


def _user_plans(result):
    return [plan for plan in result.plans if not plan.kernel_only]


def test_every_user_process_weighs_what_its_kind_does(forged):
    light, heavy = forged
    for plan in _user_plans(heavy):
        weight = weight_of(plan.image_path.rsplit("\\", 1)[-1])
        assert len(plan.vads) >= weight.vads, plan.name
        if plan.wow64:
            continue
        assert len(plan.modules) >= weight.modules, plan.name
        written = sum(v.commit_pages for v in plan.vads if v.label == "heap segment")
        assert written == weight.heap_kib * 1024 // PAGE, plan.name
    explorer = next(p for p in _user_plans(heavy) if p.name.lower() == "explorer.exe")
    assert len(explorer.modules) == 190 and len(explorer.vads) == 1300


def test_the_scenarios_own_layout_is_unchanged(forged):
    light, heavy = forged
    for before, after in zip(light.plans, heavy.plans):
        assert after.vads[: len(before.vads)] == before.vads
        assert after.modules[: len(before.modules)] == before.modules
        assert [(t.tid, t.teb, t.stack_base, t.frames, t.return_addresses) for t in after.threads] == \
               [(t.tid, t.teb, t.stack_base, t.frames, t.return_addresses) for t in before.threads]


def test_stock_volatility_lists_every_module_and_vad(forged):
    _, heavy = forged
    dlls = Counter(row["PID"] for row in run_vol(heavy, "dlllist").rows)
    vads = Counter(row["PID"] for row in run_vol(heavy, "vadinfo").rows)
    for plan in _user_plans(heavy):
        assert vads[plan.pid] == len(plan.vads), plan.name
        if not plan.wow64:
            assert dlls[plan.pid] == len(plan.modules), plan.name
    names = {row["Name"].lower() for row in run_vol(heavy, "dlllist").rows}
    assert set(FILLER_NAMES[:40]) <= names


def test_memprocfs_reads_the_same_modules_and_vads(forged):
    """MemProcFS's module lists are checked as for every scenario (``check_modules``), its VAD maps
    by count: every filler module, heap segment, reserved range and mapped view is there."""
    _, heavy = forged
    seen = Seen(heavy, _read(heavy.image), heavy.machine.kernel_base)
    check_modules(seen)
    for plan in _user_plans(heavy):
        assert len(seen.process(plan.pid)["vads"]) == len(plan.vads), plan.name


def test_the_weight_changes_no_stack_and_raises_no_finding(forged):
    light, heavy = forged
    stacks = []
    for result in (light, heavy):
        done = subprocess.run([*CLI, "stacks", str(result.image), "--symbols", str(result.symbols.parents[2]),
                               "--json", "-q", "--cache-dir", str(result.image.parent / "cache")],
                              capture_output=True, text=True, timeout=600, cwd=REPO)
        assert done.returncode == 0, done.stderr[-3000:]
        stacks.append([json.loads(line) for line in done.stdout.splitlines()])
    assert len(stacks[1]) == 201 and stacks[1] == stacks[0]
    done = subprocess.run([*CLI, "analyze", str(heavy.image), "--symbols", str(heavy.symbols.parents[2]),
                           "--json", "-q", "--cache-dir", str(heavy.image.parent / "cache")],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["findings"] == []
