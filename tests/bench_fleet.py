"""The fleet's figures for `make bench`: sources per minute on the local Dask cluster against the
same sources analysed one after another, and each worker's peak memory.

Both sides are timed the same way, as a command a person runs, from its start to its exit:
- the fleet: the whole ``callstack-forensics fleet`` command (its imports, starting the local
  cluster, the tasks, writing the store and the fleet report, stopping the cluster);
- one after another: one process that imports the analysis once and runs exactly the fleet's
  task (hash, analyse, tables, case report) on each source in turn (``bench_fleet_sequence``):
  no interpreter start per source, so the baseline is a single ``analyze`` of them all, the
  fastest sequential run there could be.
Both find Volatility's symbol cache and the page cache warm (an untimed pass first). The same
in-process sequence, timed without its process start and imports, is reported beside them: it
is what the fleet's start-up costs on sources this small.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from callstack_forensics.cli import common
from callstack_forensics.forge import forge
from callstack_forensics.fleet.store import FileStamp
from callstack_forensics.fleet.task import SourceJob, run_source

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CLI = Path(sys.executable).parent / "callstack-forensics"
SPEEDUP_TARGET = 1.7
LAYOUTS = [None, "BBED7C2955FBE4522AAA23F4B8677AD9", "0CE4A95C0CD782A7596B034D8648E585"]  # shipped, 10 2004, 11
ATTACKS = [("SRV-0201", "direct_syscall"), ("SRV-0202", "wmi_event_consumer"), ("SRV-0203", "ransomware_rename")]
DUMPS = ["breakpad_tiny-exe-fastfail.dmp", "rust-minidump_invalid-parameter.dmp", "breakpad_write_av_non_canonical.dmp"]
THREADS_SCALE = 1
RAM = "512M"  # hashing reads the whole image (sparse or not): 4 GiB costs 10-40 s here, and would be most of the figure
ROUNDS = 3  # one after another and the fleet alternate; the median of each (2 shared cores: neighbours' load varies)


@dataclass(frozen=True)
class FleetShape:
    """A fleet: benign desktops on each kernel layout, the attacked servers, real minidumps."""

    desktops_per_layout: int
    dumps: int

    @property
    def hosts(self) -> list[tuple[str, str, str | None]]:
        """(computer name, scenario, kernel layout under ../shared/isf or None for the shipped default)"""
        desktops = [(f"WS-{101 + i * len(LAYOUTS) + j:04d}", "benign_desktop", layout)
                    for i in range(self.desktops_per_layout) for j, layout in enumerate(LAYOUTS)]
        return desktops + [(name, scenario, None) for name, scenario in ATTACKS]

    def describe(self) -> str:
        desktops = self.desktops_per_layout * len(LAYOUTS)
        return (f"{desktops} benign desktops ({self.desktops_per_layout} on each of three kernel layouts), "
                f"{len(ATTACKS)} attacked servers ({RAM} of RAM each, written sparse) and {self.dumps} real minidumps "
                "(`../shared/realdata`)")


# The target's fleet: tens of hosts, as a fleet is (a run's fixed cost, ~1 s, spread as it would be);
# the small one shows that cost's share when a fleet is a handful of sources
FLEET = FleetShape(desktops_per_layout=6, dumps=3)
SMALL_FLEET = FleetShape(desktops_per_layout=1, dumps=2)


@dataclass(frozen=True)
class FleetFigures:
    sources: int
    sequential_s: float
    fleet_s: float
    workers: int
    peak_rss: dict[str, int]
    store_bytes: int
    task_s: float  # the tasks' own wall times added up: over fleet_s, how many ran at once on average
    load: str
    in_process_s: float  # the sequence in the timing process itself, start-up not counted
    shape: FleetShape

    @property
    def speedup(self) -> float:
        return self.sequential_s / self.fleet_s

    def per_minute(self, seconds: float) -> float:
        return 60.0 * self.sources / seconds


def build(folder: Path, shape: FleetShape) -> tuple[list[Path], list[Path]]:
    """The fleet's sources (forged with RAM of their own, written sparse) and their symbol folders."""
    shutil.rmtree(folder, ignore_errors=True)
    images = []
    for name, scenario, layout in shape.hosts:
        isf = SHARED / "isf" / "windows" / "ntkrnlmp.pdb" / f"{layout}-1.json.xz" if layout else None
        result = forge(ROOT / "samples" / "scenarios" / f"{scenario}.toml", folder / name / f"{name}.raw", isf,
                       threads_scale=THREADS_SCALE, ram=RAM, computer_name=name)
        images.append(result.image)
    dumps = [SHARED / "realdata" / d for d in DUMPS[:shape.dumps] if (SHARED / "realdata" / d).is_file()]
    return images + dumps, sorted({i.parent / "symbols" for i in images})


def measure(folder: Path, shape: FleetShape = FLEET) -> FleetFigures:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    sources, symbols = build(folder / "sources", shape)
    cache = folder / "volcache"
    opts = common.RunOptions(symbols=symbols, cache_dir=cache)
    for source in sources:  # warm Volatility's symbol cache and the page cache for both alike
        run_source(SourceJob(FileStamp.of(source), opts))
    sequential, in_process, fleet, summaries = [], [], [], []
    for _ in range(ROUNDS):
        sequential.append(one_after_another(sources, symbols, cache))
        in_process.append(in_this_process(sources, opts))
        seconds, summary = on_the_cluster(sources, symbols, cache, folder / "case")
        fleet.append(seconds)
        summaries.append(summary)
    summary = summaries[fleet.index(statistics.median(fleet))]
    size = sum(p.stat().st_size for p in (folder / "case" / "store").rglob("*.parquet"))
    peak = {k: max(s["peak_rss_per_worker"].get(k, 0) for s in summaries) for k in summary["peak_rss_per_worker"]}
    return FleetFigures(len(sources), statistics.median(sequential), statistics.median(fleet), len(peak), peak, size,
                        summary["task_seconds"], load, statistics.median(in_process), shape)


def one_after_another(sources: list[Path], symbols: list[Path], cache: Path) -> float:
    """The baseline command, timed whole as the fleet's is."""
    cmd = [sys.executable, "-m", "tests.bench_fleet_sequence", "--cache-dir", str(cache), *map(str, sources)]
    for path in symbols:
        cmd += ["--symbols", str(path)]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=ROOT)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"one after another failed: {done.stderr[-2000:]}")
    return seconds


def in_this_process(sources: list[Path], opts: common.RunOptions) -> float:
    """The same sequence in this (warm) process: no start-up, imports or parser build counted."""
    started = time.perf_counter()
    for source in sources:
        outcome = run_source(SourceJob(FileStamp.of(source), opts))
        assert outcome.status == "done", outcome.error
    return time.perf_counter() - started


def on_the_cluster(sources: list[Path], symbols: list[Path], cache: Path, case: Path) -> tuple[float, dict]:
    shutil.rmtree(case, ignore_errors=True)
    cmd = [str(CLI), "fleet", *map(str, sources), "-o", str(case), "--cache-dir", str(cache), "--json", "-q"]
    for path in symbols:
        cmd += ["--symbols", str(path)]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"fleet failed: {done.stderr[-2000:]}")
    summary = json.loads(done.stdout)
    assert summary["analysed"] == len(sources), summary
    return seconds, summary


def fleet_section(fleet: FleetFigures, small: FleetFigures | None = None) -> tuple[list[str], list[str]]:
    """The section (the target's fleet, then the small one if measured) and the target row."""
    met = "**met**" if fleet.speedup >= SPEEDUP_TARGET else "**not met**"
    targets = [f"| `fleet` on the local cluster >= {SPEEDUP_TARGET}x the same {fleet.sources} sources one after "
               f"another | {fleet.speedup:.2f}x | {met} |"]
    lines = [
        "## The fleet",
        "",
        "Both sides timed as commands, from start to exit. One after another: one process running the fleet's own "
        "task (hash, analyse, tables, case report) on each source in turn, its imports once. The fleet: the whole "
        f"`callstack-forensics fleet` command, local cluster start and stop included, {fleet.workers} workers. "
        f"Load average before: {fleet.load} (2 cores shared with other work: wall times carry it).",
        "",
        *_table(fleet),
        *(_table(small) if small else []),
    ]
    return lines, targets


def _table(figures: FleetFigures) -> list[str]:
    peak = max(figures.peak_rss.values()) / 2**20
    return [
        f"{figures.sources} sources: {figures.shape.describe()}.",
        "",
        "| measure | one after another | fleet |",
        "|---|---|---|",
        f"| wall time (median of {ROUNDS}) | {figures.sequential_s:.1f} s | {figures.fleet_s:.1f} s |",
        f"| sources per minute | {figures.per_minute(figures.sequential_s):.1f} | {figures.per_minute(figures.fleet_s):.1f} |",
        f"| speed-up | | {figures.speedup:.2f}x |",
        f"| the sequence inside an already started process (no start-up, imports or parser build) | "
        f"{figures.in_process_s:.1f} s | {figures.in_process_s / figures.fleet_s:.2f}x |",
        f"| tasks running at once (their wall times added up / the fleet's) | | {figures.task_s / figures.fleet_s:.2f} |",
        f"| peak memory per worker (max over workers) | | {peak:.0f} MiB |",
        f"| case store (Parquet, all tables) | | {figures.store_bytes / 2**20:.2f} MiB |",
        "",
    ]


def measure_both(folder: Path) -> tuple[FleetFigures, FleetFigures]:
    return measure(folder / "fleet", FLEET), measure(folder / "small", SMALL_FLEET)


if __name__ == "__main__":
    print("\n".join(fleet_section(*measure_both(ROOT / "out" / "bench" / "fleet"))[0]))
