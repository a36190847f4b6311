"""What a fuzz run found, shared by the engine half (engine.py) and the image half (images.py).

Every case tried ends as exactly one of: clean, noted (the engine said why a result is
incomplete: a stop reason, a note, a documented error), a crash (an exception the engine does not
document) or a hang (the case ran past its time bound). ``accounted`` checks that nothing was lost.

Conventions for a runner ``run_X(count, seed, deadline) -> FuzzCounts``: case ``i`` of seed ``s``
is rebuilt from ``(s, i)`` alone, so a crash or hang is reproduced from those two numbers;
``deadline`` is a ``time.monotonic()`` value after which no new case starts.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

_NUMBER = re.compile(r"0x[0-9a-fA-F]+|\d+")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
MAX_KIND = 90


def note_kind(area: str, text: str, last: bool = False) -> str:
    """A note's category: its first clause (``last``: its last, for a walk's note, where the
    clause that ended the walk comes last) with numbers and quoted values blanked, so that
    ``unwind failed at 0x7ff..: UNWIND_INFO at rva 0x3000 has version 5`` counts with its kind."""
    clauses = text.split("; ")
    clause = clauses[-1] if last else clauses[0]
    kind = _QUOTED.sub("'…'", _NUMBER.sub("#", clause)).strip()
    kind = f"{area}: {kind}" if kind else area
    return kind if len(kind) <= MAX_KIND else kind[: MAX_KIND - 1] + "…"


@dataclass(frozen=True, slots=True)
class Failure:
    """A crash or a hang, with what reproduces it."""

    runner: str  # "engine" or "images"
    case: str  # the kind of case (stack, wow64, pe, unwind...)
    seed: int
    index: int
    detail: str  # the exception and where it was raised, or how long the case ran

    @property
    def reproduce(self) -> str:
        return f"python -m tests.fuzz --{self.runner}-case {self.index} --seed {self.seed}"


@dataclass(slots=True)
class FuzzCounts:
    """Counts of one run (or of several merged)."""

    tried: int = 0
    clean: int = 0
    noted: int = 0
    notes: Counter[str] = field(default_factory=Counter)
    cases: Counter[str] = field(default_factory=Counter)  # tried, by kind of case
    crashes: list[Failure] = field(default_factory=list)
    hangs: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False  # the deadline came before ``count`` cases were tried
    slowest_seconds: float = 0.0  # the longest case that finished: how close anything came to a hang
    slowest_reproduce: str = ""  # what reproduces it

    @property
    def accounted(self) -> bool:
        """Every case tried is clean, noted, a crash or a hang, once."""
        return self.tried == self.clean + self.noted + len(self.crashes) + len(self.hangs) \
            and sum(self.notes.values()) == self.noted and sum(self.cases.values()) == self.tried

    @property
    def ok(self) -> bool:
        return not self.crashes and not self.hangs

    def timed(self, seconds: float, reproduce: str) -> None:
        if seconds > self.slowest_seconds:
            self.slowest_seconds, self.slowest_reproduce = seconds, reproduce

    def add_clean(self, case: str) -> None:
        self.tried += 1
        self.cases[case] += 1
        self.clean += 1

    def add_noted(self, case: str, kind: str) -> None:
        self.tried += 1
        self.cases[case] += 1
        self.noted += 1
        self.notes[kind] += 1

    def add_crash(self, failure: Failure) -> None:
        self.tried += 1
        self.cases[failure.case] += 1
        self.crashes.append(failure)

    def add_hang(self, failure: Failure) -> None:
        self.tried += 1
        self.cases[failure.case] += 1
        self.hangs.append(failure)

    def merge(self, other: "FuzzCounts") -> "FuzzCounts":
        """A new FuzzCounts holding both runs' counts."""
        slow = max((self, other), key=lambda c: c.slowest_seconds)
        return FuzzCounts(
            tried=self.tried + other.tried,
            clean=self.clean + other.clean,
            noted=self.noted + other.noted,
            notes=self.notes + other.notes,
            cases=self.cases + other.cases,
            crashes=self.crashes + other.crashes,
            hangs=self.hangs + other.hangs,
            seconds=self.seconds + other.seconds,
            stopped_early=self.stopped_early or other.stopped_early,
            slowest_seconds=slow.slowest_seconds,
            slowest_reproduce=slow.slowest_reproduce,
        )

    # ---- printing ----------------------------------------------------------------------

    def summary_table(self, title: str) -> Table:
        table = Table(title=title)
        table.add_column("count", justify="right")
        table.add_column("what")
        rate = f" ({self.tried / self.seconds:,.0f}/s)" if self.seconds > 0 else ""
        table.add_row(f"{self.tried:,}", f"cases tried in {self.seconds:,.1f} s{rate}"
                      + (" - stopped at the deadline" if self.stopped_early else ""))
        for case, n in sorted(self.cases.items()):
            table.add_row(f"{n:,}", f"  {case}")
        table.add_row(f"{self.clean:,}", "clean")
        table.add_row(f"{self.noted:,}", "noted (incomplete result, with the reason)")
        table.add_row(f"{len(self.crashes):,}", "crashes", style="bold red" if self.crashes else None)
        table.add_row(f"{len(self.hangs):,}", "hangs", style="bold red" if self.hangs else None)
        if self.slowest_reproduce:
            table.add_row(f"{self.slowest_seconds:.2f} s", f"slowest case: {self.slowest_reproduce}")
        return table

    def notes_table(self, limit: int = 40) -> Table:
        table = Table(title="notes by kind")
        table.add_column("count", justify="right")
        table.add_column("kind")
        ranked = self.notes.most_common()
        for kind, n in ranked[:limit]:
            table.add_row(f"{n:,}", kind)
        rest = ranked[limit:]
        if rest:
            table.add_row(f"{sum(n for _, n in rest):,}", f"({len(rest)} other kinds)")
        return table

    def failures_table(self) -> Table:
        table = Table(title="crashes and hangs")
        for column in ("what", "case", "detail", "reproduce"):
            table.add_column(column, overflow="fold")
        for label, items in (("crash", self.crashes), ("hang", self.hangs)):
            for failure in items:
                table.add_row(label, failure.case, failure.detail, failure.reproduce)
        return table

    def print(self, console: Console, title: str = "fuzz") -> None:
        console.print(self.summary_table(title))
        if self.notes:
            console.print(self.notes_table())
        if self.crashes or self.hangs:
            console.print(self.failures_table())
