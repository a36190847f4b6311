"""`make bench`: the speed figures the issues set targets for, printed and written to BENCHMARKS.md.

Benchmarks are measurements, never pass/fail tests: a missed target is written down as missed.
Sections:
- MemProcFS: the same images, the same rounds, every call stack of every thread read by the C
  engine (tests/bench_memprocfs.py): wall, CPU, peak RSS and the CPU each added thread costs;
- a real-size image (8 GiB, ~150 processes, ~3,500 threads): detect against malfind and MemProcFS;
- Volatility: ``callstacks.detect`` against stock ``windows.malfind`` and ``windows.threads`` on
  the forge's benign image at 1x, 4x and 8x its threads, wall time and peak memory as ratios,
  and the time per thread at each scale (tests/bench_vol.py);
- unwinder: frames per second on one core with the module cache warm, over the Wine
  captures (real compiled code, real Wine system DLLs);
- rules: rules x events per second, when the rule engine is present;
- the forge: every scenario's build time and disk use (tests/bench_forge.py);
- the fleet: sources per minute on the local Dask cluster against one after another, peak memory
  per worker (tests/bench_fleet.py).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from callstack_forensics.engine.context import ProcessContext, WalkOptions
from callstack_forensics.memory.minidump import MinidumpMemory
from callstack_forensics.engine.modules import ImageCache
from callstack_forensics.engine.walker import walk_thread

from . import bench_fleet, bench_forge, bench_vol
from .bench_vol import DETECT, FIXED, MALFIND, MEMPROCFS, PSLIST, THREADS, ScaleResult

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "tests" / "wine" / "build" / "captures"
OUT = ROOT / "out" / "bench"
CHANGES = ROOT / "tests" / "bench_changes.md"  # what each speed change bought: measured once, kept as written
TIME_RATIO_TARGET = 1.5
MEMORY_RATIO_TARGET = 1.5
PER_THREAD_SPREAD_TARGET = 0.20
UNWINDER_TARGET = 20_000
PER_THREAD_VS_MEMPROCFS = 2.0  # our CPU per added thread, at most this many times MemProcFS's
WALL_VS_MEMPROCFS = 5.0  # the whole run at the largest scale, at most this many times MemProcFS's


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    target: str = ""

    def row(self) -> str:
        return f"| {self.name} | {self.value:,.0f} {self.unit} | {self.target} |"


def capture_dumps() -> list[Path]:
    dumps = sorted(CAPTURES.glob("*/full.dmp"))
    if dumps:
        return dumps
    from tests.wine.capture import capture_all  # builds and captures under Wine

    capture_all()
    return sorted(CAPTURES.glob("*/full.dmp"))


def bench_unwinder(dumps: list[Path], seconds: float = 3.0) -> Figure:
    """Walk every thread of every dump again and again, the image cache kept warm."""
    images = ImageCache()
    contexts = []
    for dump in dumps:
        memory = MinidumpMemory(dump)
        contexts.append((ProcessContext(memory, WalkOptions(), images), memory.threads()))
    for ctx, threads in contexts:  # warm-up: module parses and code pages
        for thread in threads:
            walk_thread(ctx, thread)
    frames = 0
    # CPU time of this process, not wall time: the walk is single-threaded, and on a shared
    # machine wall time would measure the neighbours' load as much as the unwinder
    start = time.process_time()
    while time.process_time() - start < seconds:
        for ctx, threads in contexts:
            ctx.cache.clear()  # stack pages are read afresh each round, as for a new image
            for thread in threads:
                frames += len(walk_thread(ctx, thread).frames)
    elapsed = time.process_time() - start
    return Figure("unwinder frames per CPU second (1 core, module cache warm)", frames / elapsed, "frames/s",
                  f">= {UNWINDER_TARGET:,}")


def bench_rules() -> Figure | None:
    try:
        from callstack_forensics.rules.bench import bench_rules as run
    except ImportError:
        return None
    result = run(300, 20000)
    value = float(result.get("rule_events_per_second", 0.0))
    return Figure("rules x events per second (300 rules, 20,000 events)", value, "rule-events/s")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from volatility3.framework import constants

    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}; "
            f"{platform.system()} {platform.release()}; Volatility 3 {constants.PACKAGE_VERSION}")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def volatility_section(results: list[ScaleResult]) -> tuple[list[str], list[str]]:
    """The comparison tables, and the target rows they decide."""
    lines = [
        "## `callstacks.detect` against Volatility's own plugins",
        "",
        f"The forge's benign desktop (`{bench_vol.SCENARIO.relative_to(ROOT)}`) at 1x, 4x and 8x its threads "
        "(`callstack-forensics forge --threads-scale N`: every thread cloned with its own TID, TEB and stack; "
        "`windows.threads` is checked to list exactly that many). Each command runs once untimed first (warm "
        f"symbol cache, `--offline`), then in {bench_vol.RUNS} rounds, each round running every command on every "
        "scale in turn; the median. Wall time around the child; CPU "
        "(user + system) and peak RSS are the child's own (`os.wait4`). `windows.malfind` and `windows.threads` "
        "run stock (`vol -f IMAGE PLUGIN`), `callstacks.detect` with `-p plugins`.",
        "",
        "| scale | threads | detect s | malfind s | threads s | **detect / malfind** | detect / threads | "
        "detect CPU / malfind CPU | detect MiB | malfind MiB | threads MiB | **detect / malfind** | "
        "detect / threads |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m = r.measures
        lines.append(
            f"| {r.image.scale}x | {r.image.threads:,} | {m[DETECT].wall:.2f} | {m[MALFIND].wall:.2f} | "
            f"{m[THREADS].wall:.2f} | **{r.ratio(DETECT, MALFIND, 'wall'):.2f}x** | "
            f"{r.ratio(DETECT, THREADS, 'wall'):.2f}x | {r.ratio(DETECT, MALFIND, 'cpu'):.2f}x | "
            f"{m[DETECT].rss_mib:.1f} | {m[MALFIND].rss_mib:.1f} | {m[THREADS].rss_mib:.1f} | "
            f"**{r.ratio(DETECT, MALFIND, 'rss_mib'):.2f}x** | {r.ratio(DETECT, THREADS, 'rss_mib'):.2f}x |")
    wall, cpu = bench_vol.per_thread(results, "wall"), bench_vol.per_thread(results, "cpu")
    net_spread = bench_vol.spread([p.added for p in cpu if p.added is not None])
    lines += [
        "",
        "### Time per thread",
        "",
        "Three ways. *Wall / thread*: the run's median wall time over its threads; it falls as the image grows "
        "whatever a thread costs, since most of a 1x run does not depend on the threads (Volatility's start-up, "
        "imports, rule and YARA compilation). *Walked / thread*: detect minus the same round's "
        "`callstacks.detect --pid` of a process that does not exist (every process opened, none walked), over the "
        "threads, median over the rounds; it still holds each process's own work (modules, image sections, YARA), "
        "spread over fewer threads at 1x. *Added / thread*: detect on this scale minus detect on the previous one, "
        f"over the threads added, from each scale's fastest of {bench_vol.PER_THREAD_RUNS} runs: what one more "
        "thread costs, the same from 1x to 8x exactly when the run grows linearly with its threads. The target is "
        "read on it in CPU time (the child's user + system time): the increments are tenths of a second, and on a "
        "shared machine the wall clock adds as much again whenever a neighbour holds the core, while noise only "
        "ever adds time, so the fastest run is the closest to the code's own cost (`timeit`'s argument). The wall "
        "time figures are beside it.",
        "",
        "| scale | threads | detect s | detect, no process walked, s | wall ms / thread | walked ms / thread | "
        "**added CPU ms / thread** | added wall ms / thread | added, from the medians |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    previous = None
    for w, c, r in zip(wall, cpu, results):
        step = f" ({previous}x -> {w.scale}x)" if previous else ""
        lines.append(f"| {w.scale}x | {w.threads:,} | {r.measures[DETECT].wall:.2f} | {r.measures[FIXED].wall:.2f} | "
                     f"{w.wall:.2f} | {w.walked:.2f} | **{_ms(c.added)}**{step} | {_ms(w.added)} | "
                     f"{_ms(w.added_median)} |")
        previous = w.scale
    lines += ["", f"Spread, (max - min) / min: added CPU {net_spread:.0%}; added wall "
              f"{bench_vol.spread([p.added for p in wall if p.added is not None]):.0%} (from the medians "
              f"{bench_vol.spread([p.added_median for p in wall if p.added_median is not None]):.0%}); walked "
              f"{bench_vol.spread([p.walked for p in wall]):.0%}; wall {bench_vol.spread([p.wall for p in wall]):.0%}. "
              "Every run's figures: `out/bench/samples.json`.", ""]
    worst_time = max(r.ratio(DETECT, MALFIND, "wall") for r in results)
    worst_memory = max(r.ratio(DETECT, MALFIND, "rss_mib") for r in results)
    targets = [
        f"| `callstacks.detect` <= {TIME_RATIO_TARGET}x `windows.malfind` in wall time, every scale | "
        f"worst {worst_time:.2f}x | {met(worst_time <= TIME_RATIO_TARGET)} |",
        f"| `callstacks.detect` <= {MEMORY_RATIO_TARGET}x `windows.malfind` in peak memory, every scale | "
        f"worst {worst_memory:.2f}x | {met(worst_memory <= MEMORY_RATIO_TARGET)} |",
        f"| time per thread constant within {PER_THREAD_SPREAD_TARGET:.0%} from 1x to 8x (CPU time each added "
        f"thread costs, 1x -> 4x against 4x -> 8x) | "
        f"spread {net_spread:.0%} | {met(net_spread <= PER_THREAD_SPREAD_TARGET)} |",
    ]
    return lines, targets


def memprocfs_section(results: list[ScaleResult]) -> tuple[list[str], list[str]]:
    """``callstacks.detect`` beside MemProcFS reading the same stacks, and the targets it decides."""
    lines = [
        "## `callstacks.detect` against MemProcFS",
        "",
        "MemProcFS (the pinned `memprocfs` wheel, offline: `-disable-symbolserver -waitinitialize`) opens the same "
        "image in the same rounds and reads every call stack of every thread (`tests/bench_memprocfs.py`); "
        "it builds much less per frame (no symbols offline, no call-site checks, no unbacked or WOW64 frames, "
        "no events or rules). Medians of the rounds; *added CPU / thread* from each scale's fastest run, as above. "
        "Beside them, stock `windows.pslist` (`vol -f IMAGE windows.pslist`) in the same rounds: it only lists the "
        "processes, which every Volatility plugin that reads a process does first (Volatility's start-up, its "
        "automagic finding the kernel and its symbols, the process list), so it is the least any run through `vol` "
        "takes, set against MemProcFS's whole run.",
        "",
        "| scale | threads | detect s / CPU s / MiB | MemProcFS s / CPU s / MiB | **wall ratio** | CPU ratio | "
        "RSS ratio | added CPU ms / thread, detect | added CPU ms / thread, MemProcFS | **ratio** | "
        "`windows.pslist` s | pslist / MemProcFS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    ours, theirs = bench_vol.added_cpu(results, DETECT), bench_vol.added_cpu(results, MEMPROCFS)
    added = [(None, None)] + list(zip(ours, theirs))
    for r, (a, b) in zip(results, added):
        d, m = r.measures[DETECT], r.measures[MEMPROCFS]
        step = "-" if a is None else f"{a:.3f}"
        mstep = "-" if b is None else f"{b:.3f}"
        ratio = "-" if a is None or b is None or b <= 0 else f"**{a / b:.1f}x**"
        lines.append(f"| {r.image.scale}x | {r.image.threads:,} | {d.wall:.2f} / {d.cpu:.2f} / {d.rss_mib:.0f} | "
                     f"{m.wall:.3f} / {m.cpu:.3f} / {m.rss_mib:.0f} | **{r.ratio(DETECT, MEMPROCFS, 'wall'):.1f}x** | "
                     f"{r.ratio(DETECT, MEMPROCFS, 'cpu'):.1f}x | {r.ratio(DETECT, MEMPROCFS, 'rss_mib'):.1f}x | "
                     f"{step} | {mstep} | {ratio} | {r.measures[PSLIST].wall:.2f} | "
                     f"{r.ratio(PSLIST, MEMPROCFS, 'wall'):.1f}x |")
    worst_added = max((a / b if b > 0 else float("inf")) for a, b in zip(ours, theirs))
    last = results[-1]
    wall = last.ratio(DETECT, MEMPROCFS, "wall")
    targets = [
        f"| CPU per added thread <= {PER_THREAD_VS_MEMPROCFS}x MemProcFS's (worst step) | {worst_added:.1f}x | "
        f"{met(worst_added <= PER_THREAD_VS_MEMPROCFS)} |",
        f"| whole run at {last.image.scale}x threads <= {WALL_VS_MEMPROCFS}x MemProcFS's wall time | {wall:.1f}x "
        f"(stock `windows.pslist` alone {last.ratio(PSLIST, MEMPROCFS, 'wall'):.1f}x) | "
        f"{met(wall <= WALL_VS_MEMPROCFS)} |",
    ]
    return lines + [""], targets


REAL_SIZE_TIME_TARGET = 1.0
REAL_SIZE_MEMORY_TARGET = 1.5
REAL_SIZE_RSS_TARGET = 400.0


def real_size_section(result: bench_vol.RealSizeResult) -> tuple[list[str], list[str]]:
    """The real-size image: detect against malfind (and MemProcFS), and the targets it decides."""
    size = result.image.path.stat().st_size >> 30
    m = result.measures
    lines = [
        "## An image of a real host's size",
        "",
        f"The benign desktop with every user process {bench_vol.REAL_SIZE['processes_scale']} times and every thread "
        f"{bench_vol.REAL_SIZE['threads_scale']} times (`callstack-forensics forge --processes-scale "
        f"{bench_vol.REAL_SIZE['processes_scale']} --threads-scale {bench_vol.REAL_SIZE['threads_scale']} --host-weight "
        f"--ram {bench_vol.REAL_SIZE['ram']}`): {size} GiB, {result.processes} processes, {result.image.threads:,} "
        f"threads, {result.modules:,} loaded modules and {result.vads:,} VADs. Each clone is laid out afresh (its own "
        "EPROCESS, page tables, VADs, PEB and stacks), and every user process carries what a real host's does beyond "
        "the scenario's own: tens of modules (explorer 190), hundreds of VADs (explorer 1,300) and megabytes of "
        "written heap (`forge/host_weight.py`). "
        f"Medians of {bench_vol.REAL_SIZE_RUNS} rounds, measured as above, except `windows.malfind`: it looks up "
        "`MmProtectToValue` again for every VAD and takes minutes on this image, so it runs once, timed.",
        "",
        "| command | wall s | CPU s | peak MiB | wall / malfind | MiB / malfind |",
        "|---|---|---|---|---|---|",
    ]
    for which in bench_vol.REAL_SIZE_ORDER:
        lines.append(f"| {which} | {m[which].wall:.2f} | {m[which].cpu:.2f} | {m[which].rss_mib:.1f} | "
                     f"{result.ratio(which, MALFIND, 'wall'):.2f}x | {result.ratio(which, MALFIND, 'rss_mib'):.2f}x |")
    wall, memory, rss = result.ratio(DETECT, MALFIND, "wall"), result.ratio(DETECT, MALFIND, "rss_mib"), m[DETECT].rss_mib
    targets = [
        f"| real-size image: `callstacks.detect` <= {REAL_SIZE_TIME_TARGET}x `windows.malfind` in wall time | "
        f"{wall:.2f}x | {met(wall <= REAL_SIZE_TIME_TARGET)} |",
        f"| real-size image: `callstacks.detect` <= {REAL_SIZE_MEMORY_TARGET}x `windows.malfind` in peak memory | "
        f"{memory:.2f}x | {met(memory <= REAL_SIZE_MEMORY_TARGET)} |",
        f"| real-size image: `callstacks.detect` peak RSS <= {REAL_SIZE_RSS_TARGET:.0f} MiB | {rss:.0f} MiB | "
        f"{met(rss <= REAL_SIZE_RSS_TARGET)} |",
    ]
    return lines + [""], targets


def load() -> str:
    try:
        return ", ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> None:
    started = dt.datetime.now(dt.timezone.utc)
    load_before = load()
    print("Volatility comparison (forging the scaled images, then running vol):")
    results = bench_vol.compare(OUT)
    bench_vol.save_samples(results, OUT / "samples.json")
    vol_lines, targets = volatility_section(results)
    memprocfs_lines, memprocfs_targets = memprocfs_section(results)
    targets.extend(memprocfs_targets)
    print("Real-size image (forging it, then running vol and MemProcFS):")
    real_lines, real_targets = real_size_section(bench_vol.compare_real_size(OUT))
    targets.extend(real_targets)
    print("Engine figures:")
    figures = [bench_unwinder(capture_dumps())]
    rules = bench_rules()
    if rules is not None:
        figures.append(rules)
    print("Forge figures:")
    forge_lines, forge_targets = bench_forge.forge_section(bench_forge.build_all(OUT / "forge"))
    targets.extend(forge_targets)
    print("Fleet figures (forging the fleet, then one after another, then on the local cluster):")
    fleet_lines, fleet_targets = bench_fleet.fleet_section(*bench_fleet.measure_both(OUT / "fleet"))
    targets.extend(fleet_targets)
    unwinder = figures[0].value
    targets.append(f"| unwinder >= {UNWINDER_TARGET:,} frames/s | {unwinder:,.0f} | {met(unwinder >= UNWINDER_TARGET)} |")
    lines = [
        "# Benchmarks",
        "",
        f"Measured {started:%Y-%m-%d %H:%M} UTC on {machine()}. Load average (1, 5, 15 min) {load_before} "
        f"before the run, {load()} after it: wall times on a busy machine carry its neighbours' load, CPU times do not.",
        "",
        "Reproduce with `make bench` (about 25 minutes on 2 cores, 7 of them one `windows.malfind` run on the real-size image; it forges the scaled images into `out/bench/` and "
        "builds the Wine captures first if they are missing). Measurements, not tests: a target missed is written "
        "down as missed.",
        "",
        "## Targets",
        "",
        "| target | figure | |",
        "|---|---|---|",
        *targets,
        "",
        *vol_lines,
        *memprocfs_lines,
        *real_lines,
        *forge_lines,
        *CHANGES.read_text().splitlines(),
        "",
        *fleet_lines,
        "## Engine",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        *[f.row() for f in figures],
        "",
    ]
    text = "\n".join(lines)
    print(text)
    (ROOT / "BENCHMARKS.md").write_text(text)


if __name__ == "__main__":
    main()
