"""What a compiled condition sees while it runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .lineage import LineageIndex


class Context:
    """The event under test, the ``$var`` bindings of enclosing ``_arraysearch`` calls, the
    events bound to sequence aliases, the process tree, and the array elements that made
    ``_arraysearch`` calls hold (``frames``: (array path, index) pairs).

    One context is reused for every evaluation of a run; conditions reset only what they change.
    """

    __slots__ = ("event", "vars", "aliases", "frames", "lineage")

    def __init__(self, lineage: "LineageIndex | None" = None) -> None:
        self.event: Any = None
        self.vars: dict[str, tuple[Any, str, int]] = {}  # name -> (element, array path, index)
        self.aliases: dict[str, Any] = {}
        self.frames: list[tuple[str, int]] = []
        self.lineage = lineage
