"""The stack engine unwinds every forged thread back into the frames its scenario names.

The forge lays stacks out from unwind data and real call sites; here the project's own engine
(walker.walk_process) reads them back from the built memory and must find the same return
addresses, unwound (not scanned) where the code has unwind data, with every caller frame's
return address verified as following a call (except the scenario's deliberate ROP gadget).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from callstack_forensics.forge import forge
from callstack_forensics.engine.stack import FoundBy
from callstack_forensics.engine.walker import walk_process

from .conftest import REPO
from .forged_memory import ForgedProcessMemory

SCENARIOS = sorted((REPO / "samples" / "scenarios").glob("*.toml"))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.stem)
def test_engine_walks_forged_stacks_back_to_the_scenario(scenario: Path, tmp_path: Path):
    result = forge(scenario, tmp_path / "x.raw")
    for plan in result.plans:
        if plan.kernel_only:
            continue
        stacks = {s.tid: s for s in walk_process(ForgedProcessMemory(result, plan))}
        for thread in plan.threads:
            stack = stacks[thread.tid]
            got = [f.address for f in stack.frames if not f.is_32bit]
            want = thread.return_addresses
            if thread.wow64 is not None:
                # the engine splices the 32-bit stack in where the 64-bit one enters the CPU simulation
                assert got and got == want[: len(got)], (plan.name, thread.tid, stack.note)
                assert [f.address for f in stack.frames if f.is_32bit] == thread.return_addresses32
                continue
            assert got[: len(want)] == want, (plan.name, thread.tid, thread.frames, stack.note, stack.stop_reason)
            gadgets = [i for i, name in enumerate(thread.frames) if name.endswith("@ret")]
            frames = stack.frames[: len(want)]
            for index, frame in enumerate(frames[1:], start=1):
                if index in gadgets:
                    assert frame.call_verified is False, (plan.name, thread.tid, index)
                    continue
                assert frame.call_verified, (plan.name, thread.tid, index, thread.frames[index])
                if frames[index - 1].module is not None:  # below unbacked code the engine has to scan
                    assert frame.method == FoundBy.UNWOUND, (plan.name, thread.tid, index, thread.frames[index])
