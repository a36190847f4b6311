"""How long work reports where it is: stages with counts, for rich bars or Volatility's callback.

A 16 GB image takes minutes; a responder must see which stage runs and how far it got.
The runner only calls this protocol, so it knows nothing of rich or of Volatility.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def stage(self, name: str, total: int | None) -> None:
        """A new stage begins (``total`` units of work, None when unknown)."""

    def advance(self, name: str, done: int, detail: str = "") -> None:
        """``done`` units of stage ``name`` are finished; ``detail`` says what is being done."""

    def finish(self, name: str, summary: str = "") -> None:
        """Stage ``name`` is over; ``summary`` is its one-line outcome (counts)."""


class NullProgress:
    """Progress that goes nowhere (tests, ``--quiet``)."""

    def stage(self, name: str, total: int | None) -> None:
        pass

    def advance(self, name: str, done: int, detail: str = "") -> None:
        pass

    def finish(self, name: str, summary: str = "") -> None:
        pass
