"""`make bench`, against Volatility: ``callstacks.detect`` beside stock ``windows.malfind`` and ``windows.threads``.

One image, the forge's benign desktop, at 1x, 4x and 8x its threads (``forge(threads_scale=N)``:
every thread cloned with its own TID, TEB and stack). Each command runs once untimed (the symbol
cache warm, the image in the page cache, and its output checked: ``windows.threads`` must list
exactly the threads the forge wrote, ``callstacks.detect`` no match on a benign image), then
``RUNS`` rounds, each running every command on every scale in turn; the medians count. Wall time,
CPU time and peak memory are the child's own: a small launcher (``bench_launch.py``) forks it and
reaps exactly its pid with ``os.wait4``. For the time per thread, detect runs ``PER_THREAD_RUNS``
times on each scale in all, and the fastest run counts.

The stock plugins run as a user runs them (``vol -f IMAGE windows.malfind``, without our plugin
folder, so they do not pay for importing our plugins); ``callstacks.detect`` with ``-p plugins``.
A fourth command, ``callstacks.detect --pid`` of a process that does not exist, walks nothing and
measures what a run costs whatever the thread count (Volatility's start-up, rule and YARA
compilation, every process opened for its identity): context for the per-thread figures.
A fifth, MemProcFS (the C engine responders also use; the pinned ``memprocfs`` wheel, offline)
reads every call stack of every thread of the same image in the same rounds
(``tests/bench_memprocfs.py``): the fastest peer, for the per-thread cost and the whole run.
A sixth, stock ``windows.pslist``, only lists the processes: what any Volatility plugin that reads
a process pays before its own work (start-up, automagic, the process list), the floor of a run
through ``vol``, set beside MemProcFS's whole run.

Measurements, never pass/fail: a figure that misses its target is reported as missed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from callstack_forensics.forge import forge, load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "samples" / "scenarios" / "benign_desktop.toml"
SCALES = (1, 4, 8)
RUNS = 5
# the per-thread figure is a difference of tenths of a second between runs: detect runs this
# many times on every scale (RUNS of them in the rounds), and the fastest run counts
PER_THREAD_RUNS = 10
VOL = Path(sys.executable).parent / "vol"
LAUNCHER = Path(__file__).resolve().parent / "bench_launch.py"
DETECT, MALFIND, THREADS, PSLIST = "callstacks.detect", "windows.malfind", "windows.threads", "windows.pslist"
MEMPROCFS = "memprocfs"  # MemProcFS reading every thread's call stack (tests/bench_memprocfs.py)
FIXED = "fixed"  # callstacks.detect walking no process


@dataclass(frozen=True, slots=True)
class Sample:
    """One child run: wall seconds, CPU seconds (user + system) and peak resident memory."""

    wall: float
    cpu: float
    rss_mib: float


@dataclass(frozen=True, slots=True)
class Measure:
    samples: tuple[Sample, ...]

    @property
    def wall(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)

    @property
    def rss_mib(self) -> float:
        return statistics.median(s.rss_mib for s in self.samples)


@dataclass(frozen=True, slots=True)
class Image:
    scale: int
    path: Path
    threads: int  # as the forge wrote them: what windows.threads must list
    pids: frozenset[int] = frozenset()  # the forged processes: windows.pslist must list them all

    @property
    def symbols(self) -> Path:
        return self.path.parent / "symbols"

    @property
    def cache(self) -> Path:
        return self.path.parent / "volcache"


@dataclass
class ScaleResult:
    image: Image
    measures: dict[str, Measure] = field(default_factory=dict)
    detect_runs: tuple[Sample, ...] = ()  # every detect run, the rounds' and the extra ones

    def ratio(self, plugin: str, other: str, what: str) -> float:
        return getattr(self.measures[plugin], what) / getattr(self.measures[other], what)


def forge_images(out: Path) -> list[Image]:
    """The benign scenario at every scale, each in its own folder (its own symbols and cache)."""
    images = []
    for scale in SCALES:
        folder = out / f"benign_x{scale}"
        result = forge(SCENARIO, folder / "benign.raw", threads_scale=scale)
        images.append(Image(scale, result.image, sum(len(p.threads) for p in result.plans),
                            frozenset(p.pid for p in result.plans)))
        (folder / "volcache").mkdir(exist_ok=True)  # vol cannot create its cache folder itself
    return images


def unused_pid() -> int:
    """A process id the scenario does not use, for the run that walks no process."""
    used = {p.pid for p in load_scenario(SCENARIO).processes}
    return next(pid for pid in range(99996, 0, -4) if pid not in used)


def command(image: Image, which: str, renderer: str) -> list[str]:
    if which == MEMPROCFS:
        return [sys.executable, "-m", "tests.bench_memprocfs", str(image.path)]
    cmd = [str(VOL), "-q", "--offline", "--cache-path", str(image.cache), "-r", renderer]
    if which in (DETECT, FIXED):
        cmd += ["-p", str(ROOT / "plugins")]
    cmd += ["-s", str(image.symbols), "-f", str(image.path)]
    if which == FIXED:
        return cmd + [DETECT, "--pid", str(unused_pid())]
    return cmd + [which]


def run_child(cmd: list[str], stdout: int | Path) -> Sample:
    """Run one command through the launcher; its own wall time, CPU time and peak RSS."""
    report = ROOT / "out" / "bench" / f"child-{os.getpid()}.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    launch = [sys.executable, "-I", "-S", str(LAUNCHER), str(report), *cmd]
    with open(stdout, "wb") if isinstance(stdout, Path) else open(os.devnull, "wb") as out:
        done = subprocess.run(launch, stdout=out, stderr=subprocess.PIPE, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr.decode(errors='replace')[-2000:]}")
    figures = json.loads(report.read_text())
    report.unlink()
    return Sample(figures["wall"], figures["cpu"], figures["maxrss_kib"] / 1024)  # ru_maxrss: KiB on Linux


def warm_and_check(image: Image, which: str) -> None:
    """The untimed first run: fills the symbol cache, and checks the output is what it must be."""
    output = image.path.parent / f"{which}.json"
    run_child(command(image, which, "json"), output)
    rows = json.loads(output.read_text())
    if which == MEMPROCFS and rows["threads"] != image.threads:
        raise AssertionError(f"MemProcFS lists {rows['threads']} threads in the {image.scale}x image, "
                             f"the forge wrote {image.threads}")
    if which == THREADS:
        tids = {row["TID"] for row in rows}
        if len(rows) != image.threads or len(tids) != image.threads:
            raise AssertionError(f"windows.threads lists {len(rows)} threads ({len(tids)} TIDs) in the "
                                 f"{image.scale}x image, the forge wrote {image.threads}")
    missing = image.pids - {row["PID"] for row in rows} if which == PSLIST else set()
    if missing:
        raise AssertionError(f"windows.pslist misses processes of the {image.scale}x image: {sorted(missing)}")
    if which in (DETECT, FIXED) and rows:
        raise AssertionError(f"{which} found {len(rows)} matches on the benign {image.scale}x image: {rows[:3]}")


ORDER = (DETECT, MALFIND, THREADS, FIXED, MEMPROCFS, PSLIST)


def compare(out: Path, runs: int = RUNS, progress=print) -> list[ScaleResult]:
    """Every command on every image: each warmed and checked first, then ``runs`` rounds, each
    round running every command on every scale in turn. A busy moment of a shared machine then
    falls on all of them alike, and the runs of one round can be compared with each other."""
    images = forge_images(out)
    for image in images:
        for which in ORDER:
            progress(f"  {image.scale}x ({image.threads:,} threads): {which}, untimed")
            warm_and_check(image, which)
    samples: dict[tuple[int, str], list[Sample]] = {(i.scale, w): [] for i in images for w in ORDER}
    for run in range(runs):
        progress(f"  timed round {run + 1} of {runs}")
        for image in images:
            for which in ORDER:
                samples[image.scale, which].append(run_child(command(image, which, "quick"), subprocess.DEVNULL))
    extra: dict[int, list[Sample]] = {image.scale: [] for image in images}
    for run in range(max(0, PER_THREAD_RUNS - runs)):
        progress(f"  {DETECT} alone, round {run + 1} of {PER_THREAD_RUNS - runs} (for the time per thread)")
        for image in images:
            extra[image.scale].append(run_child(command(image, DETECT, "quick"), subprocess.DEVNULL))
    return [ScaleResult(image, {w: Measure(tuple(samples[image.scale, w])) for w in ORDER},
                        tuple(samples[image.scale, DETECT] + extra[image.scale])) for image in images]


# An image of a real host's size: every user process of the scenario 6 times (146 processes),
# each with 4 times its threads (3,464 threads) and a real host's process's modules, VADs and
# written heap (forge/host_weight.py), on a machine of 8 GiB (the file is sparse)
REAL_SIZE = {"processes_scale": 6, "threads_scale": 4, "host_weight": True, "ram": "8G"}
REAL_SIZE_RUNS = 3
REAL_SIZE_ORDER = (DETECT, MALFIND, MEMPROCFS)
# windows.malfind looks up MmProtectToValue again for every VAD: on this image's ~40,000 VADs one
# run takes minutes (383 s when measured first). It runs once, timed, after detect's untimed run
# has filled the shared symbol cache; its ratio is far from the target either way.
REAL_SIZE_SINGLE = (MALFIND,)


@dataclass
class RealSizeResult:
    image: Image
    processes: int
    measures: dict[str, Measure]
    modules: int = 0  # loaded modules, all processes (as the forge laid them out)
    vads: int = 0

    def ratio(self, plugin: str, other: str, what: str) -> float:
        return getattr(self.measures[plugin], what) / getattr(self.measures[other], what)


def compare_real_size(out: Path, runs: int = REAL_SIZE_RUNS, progress=print) -> RealSizeResult:
    """detect, malfind and MemProcFS on the real-size image: warmed and checked, then ``runs`` rounds."""
    folder = out / "benign_real_size"
    result = forge(SCENARIO, folder / "benign.raw", **REAL_SIZE)
    (folder / "volcache").mkdir(exist_ok=True)
    image = Image(REAL_SIZE["threads_scale"], result.image, sum(len(p.threads) for p in result.plans))
    for which in REAL_SIZE_ORDER:
        if which in REAL_SIZE_SINGLE:
            continue
        progress(f"  real size ({len(result.plans)} processes, {image.threads:,} threads): {which}, untimed")
        warm_and_check(image, which)
    samples: dict[str, list[Sample]] = {w: [] for w in REAL_SIZE_ORDER}
    for run in range(runs):
        progress(f"  real size, timed round {run + 1} of {runs}")
        for which in REAL_SIZE_ORDER:
            if which not in REAL_SIZE_SINGLE or run == 0:
                samples[which].append(run_child(command(image, which, "quick"), subprocess.DEVNULL))
    return RealSizeResult(image, len(result.plans), {w: Measure(tuple(v)) for w, v in samples.items()},
                          sum(len(p.modules) + len(p.modules32) for p in result.plans),
                          sum(len(p.vads) for p in result.plans))


@dataclass(frozen=True, slots=True)
class PerThread:
    """Milliseconds per thread at one scale, three ways.

    ``wall``: the run's median wall time / threads. ``walked``: (detect - the same round's run that
    walks no process) / threads, median over the rounds: what walking the processes cost per
    thread, their per-process work (modules, image sections, YARA) included. ``added``: (detect on
    this scale - detect on the previous scale) / the threads added, from each scale's fastest of
    ``PER_THREAD_RUNS`` detect runs: what one more thread adds to a run. It leaves out everything that does not grow with the
    threads, so it is the same at every scale exactly when the run grows linearly with them
    (None at the first scale); ``added_median`` is the same from the medians.

    Why the fastest run for ``added``: the increments are a few tenths of a second, the noise of
    a shared machine as large, and noise only ever adds time; the fastest of several runs is the
    closest to what the code itself costs (the reasoning of ``timeit``'s documentation).
    """

    scale: int
    threads: int
    wall: float
    walked: float
    added: float | None
    added_median: float | None


def per_thread(results: list[ScaleResult], what: str = "wall") -> list[PerThread]:
    rows = []
    previous: ScaleResult | None = None
    for result in results:
        n = result.image.threads
        detect = [getattr(s, what) for s in result.measures[DETECT].samples]
        fixed = [getattr(s, what) for s in result.measures[FIXED].samples]
        added = added_median = None
        if previous is not None:
            more = n - previous.image.threads
            fastest = min(getattr(s, what) for s in result.detect_runs)
            added = (fastest - min(getattr(s, what) for s in previous.detect_runs)) / more * 1e3
            before = [getattr(s, what) for s in previous.measures[DETECT].samples]
            added_median = (statistics.median(detect) - statistics.median(before)) / more * 1e3
        rows.append(PerThread(result.image.scale, n, statistics.median(detect) / n * 1e3,
                              statistics.median((d - f) / n for d, f in zip(detect, fixed)) * 1e3,
                              added, added_median))
        previous = result
    return rows


def added_cpu(results: list[ScaleResult], which: str) -> list[float]:
    """CPU milliseconds each added thread costs ``which``, scale to scale, from each scale's
    fastest run (detect's every run, the others' rounds): the figure the issue compares with
    MemProcFS's."""
    def fastest(result: ScaleResult) -> float:
        runs = result.detect_runs if which == DETECT else result.measures[which].samples
        return min(s.cpu for s in runs)
    return [(fastest(b) - fastest(a)) / (b.image.threads - a.image.threads) * 1e3
            for a, b in zip(results, results[1:])]


def save_samples(results: list[ScaleResult], path: Path) -> None:
    """Every run's figures, for whoever wants more than the medians."""
    path.write_text(json.dumps([{"scale": r.image.scale, "threads": r.image.threads,
                                 "runs": {w: [[s.wall, s.cpu, s.rss_mib] for s in m.samples]
                                          for w, m in r.measures.items()},
                                 "detect_runs": [[s.wall, s.cpu, s.rss_mib] for s in r.detect_runs]}
                                for r in results], indent=1))


def spread(values: list[float]) -> float:
    """How far apart the values are: (max - min) / min; infinite when one is not positive (a
    cost that noise made zero or negative is no measurement of a constant)."""
    low = min(values)
    return (max(values) - low) / low if low > 0 else float("inf")
