"""Scenario -> raw memory image (+ the symbol table beside it): the forge's entry point.

``forge(scenario, out)`` builds the image on the default layout (the shipped Windows 10 22H2
kernel symbol table), or on another real kernel symbol table given as ``isf_path``, and writes
``<out dir>/symbols/windows/ntkrnlmp.pdb/<GUID>-<AGE>.json.xz`` so that
``vol -s <out dir>/symbols -f <out>`` finds the symbols by itself.
"""

from __future__ import annotations

import datetime as dt
import lzma
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from .assemble import Assembly, assemble
from .abi_layout import abi_layout
from .default_layout import default_isf_path, default_layout
from .layout import Layout
from .machine import KUSER_USER, Machine
from .modules import Catalog
from .physmem import DEFAULT_RAM, PhysicalMemory, parse_ram
from .plan import ProcessPlan, ThreadPlan, VadPlan
from .scale import scale_processes, scale_threads
from .scenario import ProcessSpec, Scenario, ScenarioError, computer_name_problem, load_scenario
from .userspace import UserSpaceBuilder, filetime
from .vad import MM_PROTECTION

SYSTEM_WAIT_REASONS = ("WrQueue", "Executive", "WrQueue", "DelayExecution", "WrFreePage", "Executive")


@dataclass
class ForgeResult:
    """What was built: where, from which layout, how big, how long, and the plans (for tests)."""

    scenario: Scenario
    image: Path
    symbols: Path
    layout_identifier: str
    layout_source: str
    image_size: int
    pages_used: int
    seconds: float
    plans: list[ProcessPlan] = field(default_factory=list)
    assembly: Assembly | None = None
    machine: Machine | None = None  # the memory as built (tests read it back without Volatility)

    def process(self, pid: int) -> ProcessPlan:
        return next(p for p in self.plans if p.pid == pid)

    def summary(self) -> str:
        threads = sum(len(p.threads) for p in self.plans)
        return (f"{self.image} ({self.image_size // (1024 * 1024)} MiB of RAM, {self.pages_used * 4} KiB in use): "
                f"{len(self.plans)} processes, {threads} threads, layout {self.layout_identifier} "
                f"({self.layout_source}), {self.seconds:.2f}s")


def forge(scenario_path: str | Path, out_path: str | Path, isf_path: str | Path | None = None,
          modules_dir: str | Path | None = None, layout: Layout | None = None, threads_scale: int = 1,
          ram: str | int = DEFAULT_RAM, computer_name: str | None = None, processes_scale: int = 1,
          host_weight: bool = False) -> ForgeResult:
    """Build ``scenario_path`` into ``out_path``; ``layout`` may pass ``isf_path`` already loaded.

    ``ram`` is the machine's physical memory and so the image's size (``4G``, ``512M`` or bytes):
    realistic by default, and free on disk, since only pages in use are written.
    ``threads_scale`` N gives every process N times its threads (see ``scale.scale_threads``), for
    measuring how the analysis grows with an image; ``processes_scale`` N runs N copies of every
    user process (see ``scale.scale_processes``), for images of a real host's size. ``computer_name``
    replaces the scenario's ``[system].computer_name``: one scenario forged as many distinct hosts
    of a fleet. ``host_weight`` gives every user process the modules, VADs and written heap of a
    real host's process (see ``host_weight``), after what the scenario names."""
    size = parse_ram(ram)
    started = time.monotonic()
    scenario = scale_threads(scale_processes(load_scenario(scenario_path), processes_scale), threads_scale)
    if computer_name is not None:
        problem = computer_name_problem(computer_name)
        if problem:
            raise ScenarioError(f"computer name: {problem}")
        scenario = replace(scenario, computer_name=computer_name)
    if layout is None:
        layout = Layout.load(isf_path) if isf_path else default_layout()
    catalog = Catalog.load(Path(modules_dir) if modules_dir else None)
    machine = Machine(layout, abi_layout(), PhysicalMemory(limit=size))
    plans = build_plans(scenario, catalog, machine, host_weight)
    assembly = assemble(machine, plans, filetime(scenario.time), scenario.processors)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    size = machine.phys.save(out)
    symbols = write_symbols(out.parent / "symbols", layout, Path(isf_path) if isf_path else default_isf_path())
    return ForgeResult(scenario, out, symbols, layout.identifier, layout.source, size, len(machine.phys.pages),
                       time.monotonic() - started, plans, assembly, machine)


def build_plans(scenario: Scenario, catalog: Catalog, machine: Machine, host_weight: bool = False) -> list[ProcessPlan]:
    by_pid = {p.pid: p for p in scenario.processes}
    users = UserSpaceBuilder(scenario, catalog, by_pid, machine, host_weight)
    plans = []
    tids = {t.tid + 4 * n for p in scenario.processes for t in p.threads for n in range(t.count)}
    tids |= {p.pid for p in scenario.processes}  # one id table for processes and threads, as on Windows
    for index, spec in enumerate(scenario.processes):
        if spec.kernel:
            plans.append(kernel_process(scenario, spec, machine, tids))
        else:
            plans.append(users.build(spec, index))
    return plans


def kernel_process(scenario: Scenario, spec: ProcessSpec, machine: Machine, used_tids: set[int]) -> ProcessPlan:
    """The System process: no user space, only kernel threads started inside the kernel image."""
    if spec.modules or spec.regions or spec.threads and any(t.stack for t in spec.threads):
        raise ScenarioError(f"{scenario.path.name}: {spec.where}: a kernel process has no modules, regions or "
                            "user stacks (use system_threads = N)")
    created = spec.created or scenario.boot
    plan = ProcessPlan(pid=spec.pid, ppid=spec.ppid, name=spec.name, image_path=None, command_line=None,
                       create_time=filetime(created), session_id=None, user_sid=spec.user or "S-1-5-18",
                       kernel_only=True, handles=spec.handles or 0)
    # System has an address space like any process: KUSER_SHARED_DATA is in it, under a VAD of its own
    plan.vads.append(VadPlan(KUSER_USER, KUSER_USER + 0xFFF, MM_PROTECTION["R--"], True, "private", commit_pages=1,
                             label="KUSER_SHARED_DATA"))
    tid = 8
    for index in range(spec.system_threads):
        while tid in used_tids:
            tid += 4
        start = machine.kernel_base + 0x3000 + (index % 23) * 0x1C0
        plan.threads.append(ThreadPlan(
            tid=tid, create_time=filetime(created + dt.timedelta(milliseconds=40 * index)), state="Waiting",
            wait_reason=SYSTEM_WAIT_REASONS[index % len(SYSTEM_WAIT_REASONS)], user_wait=False,
            start_address=start, win32_start_address=start))
        used_tids.add(tid)
        tid += 4
    return plan


def write_symbols(folder: Path, layout: Layout, isf_path: Path) -> Path:
    """Put the symbol table where Volatility looks for it: symbols/windows/<pdb>/<GUID>-<AGE>.json.xz."""
    target_dir = folder / "windows" / layout.pdb_name
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{layout.identifier}.json.xz"
    if isf_path.name.endswith(".xz"):
        if not target.exists() or target.stat().st_size != isf_path.stat().st_size:
            shutil.copyfile(isf_path, target)
    else:
        target.write_bytes(lzma.compress(isf_path.read_bytes()))
    return target
