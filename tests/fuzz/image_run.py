"""One memory image through the plugins, in-process, and the account of its threads.

Runs in a fuzz worker process (see ``image_pool``): Volatility is used as a library, as
``plugins/callstacks/session.py`` does it: a fresh context, the automagic chosen for the
plugin, ``construct_plugin``, then the plugin's TreeGrid consumed to its end (the grid
checks every value against its column type, as a renderer would). ``callstacks.detect``
runs first, then ``callstacks.stacks``, whose rows are held against Volatility's own
listing of the image's threads (``windows.pslist`` / ``windows.threads`` functions, over
the same mutated image): each listed thread must have a row, or its process a note.
"""

from __future__ import annotations

import importlib
import logging
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .counts import note_kind

# Volatility's exceptions on reading what is not there: its own listing of a smeared image may
# stop on them; that is the truth we hold the plugins to, not a fault of theirs.
# the plugins log under Volatility's name for them, the adapter under the package's
PLUGINS_LOGGERS = ("volatility3.plugins.callstacks", "callstack_forensics.volatility")


@dataclass(slots=True)
class ImageOutcome:
    """What one image did: opened or not, what escaped, what was noted, which threads went missing."""

    unopenable: str | None = None            # Volatility's reason for not opening it
    crash: str | None = None                 # an exception out of a plugin: phase, type, message, where
    notes: Counter[str] = field(default_factory=Counter)  # note kinds over threads and processes
    listed: int = 0                          # threads Volatility's own listing yields
    dropped: list[tuple[int, int]] = field(default_factory=list)  # listed threads with no row, no note
    detections: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0                 # the worker's CPU time: the rate a quiet machine would see


class _Captured(logging.Handler):
    """The plugins' warnings (``PID n: reason`` for a process they could not open)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@dataclass
class VolatilityRunner:
    """Volatility set up once per worker: symbols, cache, our plugins on its plugin path."""

    symbols: Path
    cache: Path

    def __post_init__(self) -> None:
        import volatility3.plugins

        from callstack_forensics.resources import plugins_path
        from callstack_forensics.volatility import session

        session.VolatilitySettings(symbols=[self.symbols], cache_dir=self.cache).apply()
        folder = str(plugins_path())
        if folder not in volatility3.plugins.__path__:  # as `vol -p` puts it
            volatility3.plugins.__path__ = [folder] + list(volatility3.plugins.__path__)
        self.detect_cls = importlib.import_module("volatility3.plugins.callstacks.detect").Detect
        self.stacks_cls = importlib.import_module("volatility3.plugins.callstacks.stacks").Stacks
        logging.getLogger("volatility3").setLevel(logging.CRITICAL)
        for name in PLUGINS_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)

    def construct(self, plugin_cls: type, image: Path) -> Any:
        """The plugin on ``image``, or UnsatisfiedException when Volatility cannot open it."""
        from volatility3.framework import automagic, contexts, plugins

        context = contexts.Context()
        context.config["automagic.LayerStacker.single_location"] = image.resolve().as_uri()
        chosen = automagic.choose_automagic(automagic.available(context), plugin_cls)
        return plugins.construct_plugin(context, chosen, plugin_cls, "plugins", lambda *_: None, None)

    def run(self, image: Path, strict: bool = False) -> ImageOutcome:
        """Both plugins over ``image``; ``strict`` lets an exception out, traceback and all."""
        from volatility3.framework import exceptions

        started, cpu = time.monotonic(), time.process_time()
        out = ImageOutcome()
        captured = _Captured()
        loggers = [logging.getLogger(name) for name in PLUGINS_LOGGERS]
        for logger in loggers:
            logger.addHandler(captured)
        try:
            try:
                detect = self.construct(self.detect_cls, image)
            except exceptions.UnsatisfiedException as exc:
                out.unopenable = "unsatisfied: " + ", ".join(sorted(_short(r) for r in exc.unsatisfied))
                return out
            rows = _consume(detect)
            out.detections = len(rows)
            stacks = self.construct(self.stacks_cls, image)
            captured.messages.clear()  # from here on: the stacks plugin's own warnings
            threads = _threads_from_rows(_consume(stacks))
            process_notes = _process_notes(captured.messages)
            listed = list_threads(stacks.context, stacks.config["kernel"])
            out.listed = len(listed)
            out.notes = _note_kinds(threads, process_notes)
            out.dropped = dropped_threads(listed, threads, set(process_notes))
        except Exception as exc:  # the point: nothing may escape the plugins
            if strict:
                raise
            out.crash = describe(exc)
        finally:
            for logger in loggers:
                logger.removeHandler(captured)
            out.seconds = time.monotonic() - started
            out.cpu_seconds = time.process_time() - cpu
        return out


def _consume(plugin: Any) -> list[list[Any]]:
    rows: list[list[Any]] = []
    plugin.run().populate(lambda node, _acc: rows.append(list(node.values)), None)
    return rows


def _short(requirement: str) -> str:
    return requirement.rsplit(".", 1)[-1]


@dataclass(slots=True)
class ThreadRows:
    """One thread's rows in ``callstacks.stacks``: how many frames, and its notes."""

    pid: int
    tid: int
    frames: int = 0
    notes: list[str] = field(default_factory=list)


def _threads_from_rows(rows: list[list[Any]]) -> list[ThreadRows]:
    """Rows grouped by thread: a thread starts at its frame 0 or at its one frameless row."""
    out: list[ThreadRows] = []
    for row in rows:
        pid, tid, frame, note = row[0], row[2], row[3], row[-1]  # Note is the last column without --bytes
        if not isinstance(tid, int):
            continue  # a row about a whole process (what it lost), not a thread
        starts = not isinstance(frame, int) or frame == 0 or not out or (out[-1].pid, out[-1].tid) != (pid, tid)
        if starts:
            out.append(ThreadRows(int(pid), int(tid)))
        current = out[-1]
        if isinstance(frame, int):
            current.frames += 1
        if isinstance(note, str) and note:
            current.notes.append(note)
    return out


def _process_notes(messages: list[str]) -> dict[int, str]:
    """``PID n: reason`` warnings of the stacks plugin, by pid."""
    out: dict[int, str] = {}
    for message in messages:
        head, _, reason = message.partition(": ")
        if head.startswith("PID ") and head[4:].lstrip("-").isdigit():
            out[int(head[4:])] = reason
    return out


def _note_kinds(threads: list[ThreadRows], process_notes: dict[int, str]) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for thread in threads:
        for note in thread.notes:
            kinds[note_kind("thread", note)] += 1
        if not thread.frames and not thread.notes:
            kinds["thread: no frames, no note"] += 1
    for reason in process_notes.values():
        kinds[note_kind("process", reason)] += 1
    return kinds


def list_threads(context: Any, kernel: str) -> list[tuple[int, int]]:
    """(pid, tid) of every thread Volatility's own plugins list in the image.

    A process or thread list that Volatility itself cannot follow past some entry ends there:
    what it could list is what the plugins are held to.
    """
    from volatility3.plugins.windows import pslist, threads

    out: list[tuple[int, int]] = []
    procs = []
    try:
        for proc in pslist.PsList.list_processes(context=context, kernel_module_name=kernel):
            procs.append(proc)
    except Exception:
        pass  # the processes listed before the list broke still count
    for proc in procs:
        try:
            pid = int(proc.UniqueProcessId)
        except Exception:
            continue
        try:
            for ethread in threads.Threads.list_threads(context, kernel, proc):
                try:
                    tid = int(ethread.Cid.UniqueThread)
                except Exception:
                    tid = -1
                out.append((pid, tid))
        except Exception:
            continue
    return out


def dropped_threads(listed: list[tuple[int, int]], rows: list[ThreadRows], noted_pids: set[int]) -> list[tuple[int, int]]:
    """Listed threads with neither a row of their own nor a note on their process."""
    missing = Counter(listed) - Counter((t.pid, t.tid) for t in rows)
    return sorted(key for key, n in missing.items() for _ in range(n) if key[0] not in noted_pids)


def describe(exc: BaseException) -> str:
    """``Type: message (file:line in function)``: the innermost frame in our code, else the innermost."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "callstack_forensics" in f.filename or "/plugins/callstacks/" in f.filename]
    frame = (ours or frames or [None])[-1]
    where = "?" if frame is None else f"{frame.filename.rsplit('/', 2)[-2]}/{frame.filename.rsplit('/', 1)[-1]}" \
        f":{frame.lineno} in {frame.name}"
    message = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {message} ({where})"
