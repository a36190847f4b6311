"""Worker processes that run mutated images through the plugins, each under a hard time bound.

A signal cannot stop Volatility reliably in the middle of a read, and a hostile image may
loop anywhere, so each image runs in a worker process the parent kills when the bound has
passed: that is a hang, the worker is replaced and the run goes on. The parent only ever
waits on pipes with a timeout, so it cannot hang itself. Workers are spawned (no inherited
state), set Volatility up once, keep each base image's bytes, and write every mutated image
to their own scratch folder (removed after the case). Shortly before the bound, a worker's
faulthandler writes where it is, and the hang is reported with that place. A worker is replaced after
``recycle_after`` cases, so whatever Volatility keeps per context cannot grow without bound.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import re
import shutil
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Callable, Iterator

from .image_run import ImageOutcome, VolatilityRunner, describe
from .image_view import Patch

STARTUP_SECONDS = 300.0
DUMP_AHEAD = 2.0  # seconds before the bound at which a worker writes where it is
DUMP_NAME = "traceback.txt"


@dataclass(frozen=True, slots=True)
class ImageTask:
    """One image to run: a base image by scenario name, and the bytes that differ from it."""

    key: int
    scenario: str
    patches: tuple[Patch, ...] = ()
    truncate: int | None = None


@dataclass(frozen=True, slots=True)
class WorkerLost:
    """A task whose worker did not answer: it ran past the bound (a hang) or died."""

    hang: bool
    detail: str


def mutated_bytes(base: bytes, task: ImageTask) -> bytes:
    """The base image with the task's patches (those beyond its end dropped) and truncation."""
    data = bytearray(base)
    for patch in task.patches:
        end = min(len(data), patch.offset + len(patch.data))
        if patch.offset < end:
            data[patch.offset : end] = patch.data[: end - patch.offset]
    if task.truncate is not None:
        del data[task.truncate :]
    return bytes(data)


def _worker(conn: Connection, symbols: str, images: dict[str, str], folder_name: str, dump_after: float) -> None:
    folder = Path(folder_name)
    folder.mkdir(parents=True, exist_ok=True)
    runner = VolatilityRunner(Path(symbols), folder / "volcache")
    bases: dict[str, bytes] = {}
    conn.send("ready")
    with open(folder / DUMP_NAME, "w") as dump:
        while True:
            task: ImageTask | None = conn.recv()
            if task is None:
                break
            if task.scenario not in bases:
                bases[task.scenario] = Path(images[task.scenario]).read_bytes()
            path = folder / f"case-{task.key}.raw"
            # where this worker is when the parent is about to kill it: the hang's report says so
            faulthandler.dump_traceback_later(dump_after, file=dump)
            try:
                path.write_bytes(mutated_bytes(bases[task.scenario], task))
                outcome = runner.run(path)
            except Exception as exc:  # outside the plugins (writing the file): still an answer
                outcome = ImageOutcome(crash="worker: " + describe(exc))
            finally:
                faulthandler.cancel_dump_traceback_later()
                path.unlink(missing_ok=True)
            conn.send(outcome)
    shutil.rmtree(folder, ignore_errors=True)


def where_it_hung(dump: str, frames: int = 3) -> str:
    """The innermost frames of a faulthandler dump of the worker's main thread."""
    lines = [line.strip() for line in dump.splitlines() if line.strip().startswith("File ")]
    picked = []
    for line in lines[:frames]:
        match = re.match(r'File "(.*)", line (\d+) in (.*)', line)
        if match:
            path, number, name = match.groups()
            picked.append(f"{'/'.join(path.rsplit('/', 2)[-2:])}:{number} in {name}")
    return " <- ".join(picked) if picked else "no traceback"


@dataclass
class _Slot:
    process: multiprocessing.Process
    conn: Connection
    started: float
    folder: Path
    ready: bool = False
    task: ImageTask | None = None
    since: float = 0.0
    done: int = 0
    history: list[int] = field(default_factory=list)  # the images it ran before, for a hang's report


class ImagePool:
    """``workers`` worker processes; :meth:`run` feeds them tasks and reports each result."""

    def __init__(self, workers: int, symbols: Path, images: dict[str, Path], scratch: Path, task_seconds: float,
                 recycle_after: int = 100) -> None:
        self.workers = workers
        self.args = (str(symbols), {k: str(v) for k, v in images.items()})
        self.scratch = scratch
        self.spawned = 0
        self.task_seconds = task_seconds
        self.recycle_after = recycle_after
        self.mp = multiprocessing.get_context("spawn")
        self.slots: list[_Slot] = []

    def _spawn(self) -> _Slot:
        parent, child = self.mp.Pipe()
        self.spawned += 1
        folder = self.scratch / f"worker-{self.spawned}"
        dump_after = max(self.task_seconds - DUMP_AHEAD, self.task_seconds * 0.8)
        process = self.mp.Process(target=_worker, args=(child, *self.args, str(folder), dump_after), daemon=True)
        process.start()
        child.close()
        return _Slot(process, parent, time.monotonic(), folder)

    def _stop(self, slot: _Slot, kill: bool) -> None:
        if not kill:
            try:
                slot.conn.send(None)
                slot.process.join(timeout=10)
            except OSError:
                pass
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join(timeout=10)
        slot.conn.close()

    def __enter__(self) -> "ImagePool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker (killing those still busy or starting)."""
        for slot in self.slots:
            self._stop(slot, kill=slot.task is not None or not slot.ready)
        self.slots = []

    def run(self, tasks: Iterator[ImageTask], report: Callable[[ImageTask, ImageOutcome | WorkerLost], None],
            deadline: float = float("inf")) -> bool:
        """Run every task (none starts after ``deadline``); True if some were left unstarted.
        Workers are started on first use and kept for the next run until :meth:`close`."""
        pending = iter(tasks)
        left_over = False
        exhausted = False
        if not self.slots:
            self.slots = [self._spawn() for _ in range(self.workers)]
        try:
            while True:
                for slot in self.slots:
                    if slot.ready and slot.task is None and not exhausted:
                        if time.monotonic() >= deadline:
                            left_over = next(pending, None) is not None
                            exhausted = True
                            break
                        task = next(pending, None)
                        if task is None:
                            exhausted = True
                            break
                        slot.task, slot.since = task, time.monotonic()
                        slot.conn.send(task)
                busy = [s for s in self.slots if s.task is not None or not s.ready]
                if exhausted and not any(s.task is not None for s in self.slots):
                    return left_over
                if busy:
                    self._wait(busy, report)
        except BaseException:
            self.close()
            raise

    def _wait(self, busy: list[_Slot], report: Callable[[ImageTask, ImageOutcome | WorkerLost], None]) -> None:
        now = time.monotonic()
        limits = [(s.since + self.task_seconds) if s.ready else (s.started + STARTUP_SECONDS) for s in busy]
        ready = wait([s.conn for s in busy], timeout=max(0.0, min(limits) - now))
        for index, slot in enumerate(list(self.slots)):
            if slot.conn in ready:
                self._answer(index, slot, report)
            elif slot in busy and time.monotonic() > limits[busy.index(slot)]:
                self._expire(index, slot, report)

    def _answer(self, index: int, slot: _Slot, report: Callable[[ImageTask, ImageOutcome | WorkerLost], None]) -> None:
        try:
            message = slot.conn.recv()
        except (EOFError, OSError):
            slot.process.join(timeout=10)
            if slot.task is None:
                raise RuntimeError(f"a fuzz worker died while starting (exit code {slot.process.exitcode})")
            report(slot.task, WorkerLost(False, f"worker died (exit code {slot.process.exitcode})"))
            self._replace(index, slot, kill=True)
            return
        if message == "ready":
            slot.ready = True
            return
        task, slot.task = slot.task, None
        slot.done += 1
        assert task is not None
        slot.history.append(task.key)
        report(task, message)
        if slot.done >= self.recycle_after:
            self._replace(index, slot, kill=False)

    def _expire(self, index: int, slot: _Slot, report: Callable[[ImageTask, ImageOutcome | WorkerLost], None]) -> None:
        if not slot.ready:
            self._stop(slot, kill=True)
            raise RuntimeError(f"a fuzz worker did not start within {STARTUP_SECONDS:g} s")
        assert slot.task is not None
        slot.process.kill()
        slot.process.join(timeout=10)
        try:
            where = where_it_hung((slot.folder / DUMP_NAME).read_text(errors="replace"))
        except OSError:
            where = "no traceback"
        before = ", ".join(map(str, slot.history[-3:])) or "none"
        report(slot.task, WorkerLost(True, f"ran past the bound of {self.task_seconds:g} s at {where} "
                                           f"(the worker's previous images: {before})"))
        self._replace(index, slot, kill=True)
        shutil.rmtree(slot.folder, ignore_errors=True)

    def _replace(self, index: int, slot: _Slot, kill: bool) -> None:
        slot.task = None
        self._stop(slot, kill)
        self.slots[index] = self._spawn()
