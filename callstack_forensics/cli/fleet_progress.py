"""The fleet's progress on the terminal: one bar for the sources, with running, failed and time left.

Each finished source also prints one line above the bar (host, findings, seconds, or the error),
so the scroll-back is the run's log. Workers report their starts from the client's event thread;
rich's progress takes updates from any thread.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..fleet.store import DONE
from ..fleet.task import SKIPPED, SourceOutcome
from ..wording import plural


class RichFleetProgress:
    """Implements the runner's FleetProgress with one rich bar."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar = Progress(TextColumn("[bold]sources"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[state]}"), TimeElapsedColumn(), TextColumn("left"),
                            TimeRemainingColumn(), console=console)
        self.task = None
        self.lock = threading.Lock()
        self.running: set[str] = set()
        self.failed = 0

    def __enter__(self) -> "RichFleetProgress":
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def begin(self, total: int, already: int) -> None:
        if already:
            self.console.print(f"{plural(already, 'source')} already in the case store: not analysed again",
                               soft_wrap=True)
        self.task = self.bar.add_task("", total=total, state=self._state())

    def started(self, path: str, worker: str, pid: int) -> None:
        with self.lock:
            self.running.add(path)
            self._refresh()

    def finished(self, outcome: SourceOutcome) -> None:
        with self.lock:
            self.running.discard(outcome.stamp.path)
            self.failed += outcome.status not in (DONE, SKIPPED)
            self.console.print(line(outcome), soft_wrap=True, highlight=False)
            if self.task is not None:
                self.bar.advance(self.task)
            self._refresh()

    def _refresh(self) -> None:
        if self.task is not None:
            self.bar.update(self.task, state=self._state())

    def _state(self) -> str:
        failed = f", [red]{self.failed} failed[/red]" if self.failed else ", 0 failed"
        return f"{len(self.running)} running{failed}"


def line(outcome: SourceOutcome) -> str:
    """``done  WS-0042  ws-0042.raw: 3 findings, 201 threads, 4.1 s`` (escaped: names come from images)."""
    name = escape(Path(outcome.stamp.path).name)
    if outcome.status == DONE:
        host = escape(outcome.host.name) if outcome.host else "?"
        counts = outcome.counts
        return (f"[green]done[/green]    {host}  {name}: {plural(counts.get('findings', 0), 'finding')}, "
                f"{plural(counts.get('threads', 0), 'thread')}, {outcome.seconds:.1f} s")
    if outcome.status == SKIPPED:
        return f"[dim]skipped[/dim] {name}: its SHA-256 is already in the case store"
    return f"[red]failed[/red]  {name}: {escape(outcome.error or 'unknown error')}"
