"""Every scenario builds on every real kernel layout, and what the forge writes is where the table says.

Reading the images back with Volatility on every (scenario, layout) pair is FORGE_FULL_MATRIX's job;
this builds them all (cheap) and checks, without Volatility, that the structures the stack engine
and the plugins depend on sit at the offsets of that build.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

from callstack_forensics.forge import forge
from callstack_forensics.forge.layout import Layout
from callstack_forensics.forge.paging import AddressSpace

from .conftest import REPO, real_isfs

SCENARIOS = sorted((REPO / "samples" / "scenarios").glob("*.toml"))


@lru_cache(maxsize=None)
def _layout(path: str) -> Layout:
    return Layout.load(path)


@pytest.mark.parametrize("isf", real_isfs() or [None], ids=lambda p: p.name[:8] if p else "none")
def test_every_scenario_builds_on_this_layout(isf, tmp_path: Path):
    if isf is None:
        pytest.skip("no real kernel ISFs")
    layout = _layout(str(isf))
    for scenario in SCENARIOS:
        result = forge(scenario, tmp_path / scenario.stem / "x.raw", isf, layout=layout)
        assert result.seconds < 10, f"{scenario.stem} took {result.seconds:.1f}s to build"
        assert result.layout_identifier == layout.identifier
        assert result.image_size == 4 << 30  # the default RAM: a realistic machine
        assert result.image.stat().st_blocks * 512 <= 64 << 20, "the image must stay sparse on disk"
        _check_threads(result, layout)


def _check_threads(result, layout: Layout) -> None:
    """Each ETHREAD's Cid, TrapFrame -> Rip/Rsp and Teb -> StackBase hold what the plan says, via this layout."""
    machine = result.machine
    kernel = machine.system_space
    for plan in result.plans:
        space = AddressSpace.attach(machine.phys, machine.kernel_half, plan.dtb)
        for thread in plan.threads:
            ethread = result.assembly.threads[(plan.pid, thread.tid)]
            tid = kernel.u64(ethread + layout.offset("_ETHREAD", "Cid.UniqueThread"))
            assert tid == thread.tid
            trap = kernel.u64(ethread + layout.offset("_ETHREAD", "Tcb.TrapFrame"))
            if thread.context is None:
                assert trap == 0
                continue
            assert kernel.u64(trap + layout.offset("_KTRAP_FRAME", "Rip")) == thread.context.rip
            assert kernel.u64(trap + layout.offset("_KTRAP_FRAME", "Rsp")) == thread.context.rsp
            teb = kernel.u64(ethread + layout.offset("_ETHREAD", "Tcb.Teb"))
            assert teb == thread.teb
            assert space.u64(teb + layout.offset("_TEB", "NtTib.StackBase")) == thread.stack_base
            if layout.has_field("_KTHREAD", "SystemCallNumber") and thread.syscall_number is not None:
                offset = layout.field("_KTHREAD", "SystemCallNumber")
                raw = kernel.read(ethread + layout.offset("_ETHREAD", "Tcb") + offset.offset, offset.size)
                assert int.from_bytes(raw, "little") == thread.syscall_number
