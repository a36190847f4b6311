"""The image half of the mutation fuzzer: forged memory images, corrupted where it hurts, through
``callstacks.detect`` and ``callstacks.stacks`` in-process, each under a hard time bound.

A handful of scenarios are forged once (with their symbol table) into a scratch folder; case
``i`` of seed ``s`` draws from ``random.Random(f"images:{s}:{i}")`` a scenario and one to five
mutations (``image_mutations``: stacks, trap frames, TEBs, PE headers, exports, ``.pdata`` and
UNWIND_INFO, VAD trees, loader lists, process and thread lists, page tables, truncation). Two
worker processes (``image_pool``) run the plugins and account for every thread (``image_run``).

Each image ends as one of: clean (the plugins said nothing the genuine image does not say),
noted (a new note kind: the first, most telling one is the image's kind; an image Volatility
refuses to open counts here too), a crash (an exception out of a plugin, a worker that died, or
a dropped thread: one Volatility lists that has neither a row nor a note on its process) or a
hang (the worker ran past the bound and was killed).
"""

from __future__ import annotations

import contextlib
import random
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from rich.console import Console
from rich.table import Table

from callstack_forensics.forge import forge

from .counts import Failure, FuzzCounts
from .image_mutations import Mutation, plan_mutations
from .image_pool import ImagePool, ImageTask, WorkerLost
from .image_run import ImageOutcome
from .image_view import ForgedView

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = ("dirty_vanity_fork", "wow64_injected_thread", "direct_syscall", "rop_library_load",
             "remote_registry_run_key")
MUTATIONS_PER_IMAGE = (1, 2, 2, 3, 3, 4, 5)
IMAGE_SECONDS = 60.0  # a genuine image of these scenarios takes 1-3 s through both plugins
WORKERS = 2
BASELINE = -1  # the key of a scenario's unmutated run


@dataclass(slots=True)
class ImageCounts(FuzzCounts):
    """FuzzCounts, plus what only images have: dropped threads, and notes inside the images."""

    dropped_threads: int = 0
    inner_notes: Counter[str] = field(default_factory=Counter)  # every new note in every image, by kind
    unopenable: int = 0
    worker_seconds: float = 0.0  # wall time the workers spent on images, and their CPU time in it
    cpu_seconds: float = 0.0
    slowest: list[tuple[float, float, str]] = field(default_factory=list)  # (wall s, CPU s, reproducer): top 5

    def print(self, console: Console, title: str = "images") -> None:
        FuzzCounts.print(self, console, title)
        if self.inner_notes:
            table = Table(title="notes inside the mutated images (threads and processes), beyond the genuine ones")
            table.add_column("count", justify="right")
            table.add_column("kind")
            for kind, n in self.inner_notes.most_common(40):
                table.add_row(f"{n:,}", kind)
            console.print(table)
        rate = f", {self.tried / self.seconds:.2f} images/s" if self.seconds else ""
        if self.tried:
            console.print(f"per image: {self.worker_seconds / self.tried:.2f} s in a worker "
                          f"({self.cpu_seconds / self.tried:.2f} s CPU); slowest: "
                          + ", ".join(f"{wall:.1f} s ({cpu:.1f} s CPU) {where}" for wall, cpu, where in self.slowest))
        console.print(f"images tried: {self.tried:,}  clean: {self.clean:,}  noted: {self.noted:,} "
                      f"({self.unopenable:,} not openable)  crashes: {len(self.crashes)}  hangs: {len(self.hangs)}  "
                      f"dropped threads: {self.dropped_threads}{rate}")


@dataclass(frozen=True, slots=True)
class ImageCase:
    seed: int
    index: int
    scenario: str
    mutations: tuple[Mutation, ...]

    @property
    def kind(self) -> str:
        return self.mutations[0].family if self.mutations else "none"

    def describe(self) -> str:
        return f"{self.scenario}: " + " | ".join(str(m) for m in self.mutations)

    def task(self) -> ImageTask:
        patches = tuple(p for m in self.mutations for p in m.patches)
        cut = next((m.truncate for m in self.mutations if m.truncate is not None), None)
        return ImageTask(self.index, self.scenario, patches, cut)


FUZZ_RAM = "64M"


@dataclass
class ImageCorpus:
    """The forged scenarios, each forged on first use into ``folder`` (symbols beside them)."""

    folder: Path
    scenarios: tuple[str, ...] = SCENARIOS
    views: dict[str, ForgedView] = field(default_factory=dict)

    def view(self, name: str) -> ForgedView:
        if name not in self.views:
            # 64 MiB of RAM, not the default 4 GiB: every case reads its base image into memory and writes
            # the mutated copy in full (not sparse), so the machine is kept as small as the forge allows
            result = forge(REPO / "samples" / "scenarios" / f"{name}.toml", self.folder / f"{name}.raw", ram=FUZZ_RAM)
            self.views[name] = ForgedView(result)
        return self.views[name]

    @property
    def symbols(self) -> Path:
        return self.folder / "symbols"

    @property
    def images(self) -> dict[str, Path]:
        return {name: self.view(name).result.image for name in self.scenarios}


def make_case(corpus: ImageCorpus, seed: int, index: int) -> ImageCase:
    """Case ``index`` of ``seed``: the same scenario and mutations every time."""
    rng = random.Random(f"images:{seed}:{index}")
    scenario = rng.choice(sorted(corpus.scenarios))
    mutations = plan_mutations(rng, corpus.view(scenario), rng.choice(MUTATIONS_PER_IMAGE))
    return ImageCase(seed, index, scenario, tuple(mutations))


def run_images(count: int, seed: int, deadline: float, workers: int = WORKERS,
               image_seconds: float = IMAGE_SECONDS) -> ImageCounts:
    """Try ``count`` mutated images (fewer if ``deadline``, a ``time.monotonic()`` value, comes first)."""
    start = time.monotonic()
    counts = ImageCounts()
    folder = Path(tempfile.mkdtemp(prefix="fuzz-images-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        corpus = ImageCorpus(folder)
        pool = ImagePool(workers, corpus.symbols, corpus.images, folder, image_seconds)
        stack.callback(pool.close)
        baselines = _baselines(pool, corpus, seed, counts)
        cases: dict[int, ImageCase] = {}

        def tasks() -> Iterator[ImageTask]:
            for index in range(count):
                case = make_case(corpus, seed, index)
                cases[index] = case
                yield case.task()

        def report(task: ImageTask, result: ImageOutcome | WorkerLost) -> None:
            record(counts, cases.pop(task.key), result, baselines)

        counts.stopped_early = pool.run(tasks(), report, deadline)
    counts.seconds = time.monotonic() - start
    return counts


def _baselines(pool: ImagePool, corpus: ImageCorpus, seed: int, counts: ImageCounts) -> dict[str, Counter[str]]:
    """The note kinds of each genuine image: what a mutated one says beyond them is news.
    A genuine image that crashes, hangs or drops a thread is reported as a failure of its own."""
    names = sorted(corpus.scenarios)
    out: dict[str, Counter[str]] = {}

    def report(task: ImageTask, result: ImageOutcome | WorkerLost) -> None:
        name = names[-task.key - 1]
        if isinstance(result, ImageOutcome) and not (result.crash or result.dropped or result.unopenable):
            out[name] = result.notes
            return
        record(counts, ImageCase(seed, BASELINE, name, ()), result, {})
        out[name] = Counter()

    pool.run(iter([ImageTask(-i - 1, name) for i, name in enumerate(names)]), report)
    return out


def record(counts: ImageCounts, case: ImageCase, result: ImageOutcome | WorkerLost,
           baselines: dict[str, Counter[str]]) -> None:
    """One image's result into the counts: exactly one of clean, noted, crash, hang."""
    kind = case.kind
    if isinstance(result, WorkerLost):
        failure = Failure("images", kind, case.seed, case.index, f"{result.detail}; {case.describe()}")
        (counts.add_hang if result.hang else counts.add_crash)(failure)
        return
    counts.worker_seconds += result.seconds
    counts.cpu_seconds += result.cpu_seconds
    counts.slowest = sorted(counts.slowest + [(result.seconds, result.cpu_seconds, f"{case.index}/{case.seed}")],
                            reverse=True)[:5]
    if result.crash:
        counts.add_crash(Failure("images", kind, case.seed, case.index, f"{result.crash}; {case.describe()}"))
        return
    if result.dropped:
        counts.dropped_threads += len(result.dropped)
        shown = ", ".join(f"{pid}/{tid}" for pid, tid in result.dropped[:8])
        counts.add_crash(Failure("images", kind, case.seed, case.index,
                                 f"dropped {len(result.dropped)} of {result.listed} threads (pid/tid {shown}); "
                                 f"{case.describe()}"))
        return
    if result.unopenable:
        counts.unopenable += 1
        counts.add_noted(kind, f"image not openable: {result.unopenable}")
        return
    news = result.notes - baselines.get(case.scenario, Counter())
    counts.inner_notes.update(news)
    if not news:
        counts.add_clean(kind)
        return
    counts.add_noted(kind, _most_telling(news))


def _most_telling(news: Counter[str]) -> str:
    """The note an image is filed under: a process's note before a thread's, then the commonest."""
    return min(news, key=lambda k: (not k.startswith("process"), -news[k], k))


def replay(seed: int, index: int) -> tuple[ImageCase, ImageOutcome]:
    """Rebuild image ``index`` of ``seed`` and run it here, in this process (no time bound), for
    debugging: an exception out of the plugins is raised, traceback and all."""
    from .image_pool import mutated_bytes
    from .image_run import VolatilityRunner

    folder = Path(tempfile.mkdtemp(prefix="fuzz-replay-"))
    try:
        corpus = ImageCorpus(folder)
        case = make_case(corpus, seed, index)
        path = folder / "case.raw"
        path.write_bytes(mutated_bytes(corpus.view(case.scenario).result.image.read_bytes(), case.task()))
        return case, VolatilityRunner(corpus.symbols, folder / "volcache").run(path, strict=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
