"""The analysis's stage progress as rich progress bars on stderr, one bar per stage.

Each stage shows its count and elapsed time while it runs and its one-line summary when
it ends, so a long run on a big image says where it is and what it found so far.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn


class RichStages:
    """Implements the core's Progress protocol with one rich task per stage."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bars = Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[stage]:<10}"), BarColumn(),
                             MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.description}"),
                             console=console, transient=False)
        self.tasks: dict[str, TaskID] = {}
        self.started: dict[str, float] = {}

    def __enter__(self) -> "RichStages":
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def stage(self, name: str, total: int | None) -> None:
        self.tasks[name] = self.bars.add_task("", total=total, stage=name)
        self.started[name] = time.monotonic()

    def advance(self, name: str, done: int, detail: str = "") -> None:
        if name in self.tasks:
            self.bars.update(self.tasks[name], completed=done, description=_plain(detail))

    def finish(self, name: str, summary: str = "") -> None:
        if name in self.tasks:
            task = self.tasks[name]
            state = self.bars.tasks[task]
            done = state.total if state.total is not None else max(int(state.completed), 1)
            self.bars.update(task, total=done, completed=done, description=_plain(summary))

    def volatility_callback(self, name: str = "image"):
        """Volatility's ``(percent, description)`` callback as a stage of 100 units."""
        self.stage(name, 100)

        def callback(percent: float, description: str = "") -> None:
            self.advance(name, int(percent), description)

        return callback


def _plain(text: str) -> str:
    """Image strings go into rich markup: escape them so ``[red]`` in a process name stays text."""
    from rich.markup import escape

    return escape(text)
