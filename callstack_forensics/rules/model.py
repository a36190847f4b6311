"""Rules, load errors and matches: the rule engine's public records."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..eql import CompiledQuery

SEVERITIES = ("low", "medium", "high", "critical")
DEFAULT_SEVERITY = "medium"


@dataclass(eq=False)
class RuleLoadError(Exception):
    """A rule file that could not be loaded, with the position (in the file) of the problem."""

    path: Path
    line: int
    column: int
    message: str

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


@dataclass
class Rule:
    """One detection rule in Elastic's endpoint TOML layout.

    ``raw`` is the whole parsed file, so tables this engine does not use (``[[actions]]``,
    ``[internal]``, ``[[optional_actions]]``...) survive. ``severity`` defaults to medium because
    Elastic's public endpoint rules carry none; ``adaptation`` is our note on how a rule was made
    to work after the fact on a memory image.
    """

    id: str
    name: str
    query: str
    path: Path
    description: str = ""
    severity: str = DEFAULT_SEVERITY
    adaptation: str | None = None
    version: str | None = None
    os_list: list[str] = field(default_factory=list)
    reference: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    compiled: CompiledQuery | None = field(default=None, repr=False, compare=False)

    @property
    def threat(self) -> list[dict[str, Any]]:
        return list(self.raw.get("threat", []))

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "severity": self.severity,
            "path": str(self.path),
            "adaptation": self.adaptation,
        }


@dataclass
class Match:
    """A rule that fired: the event (or the events of a sequence, in order) and, for every
    ``_arraysearch`` that held, the searched array's field path and the matching element's
    index, so a report can highlight the frames that made the rule fire."""

    rule: Rule
    events: list[dict[str, Any]]
    matched_frames: list[tuple[str, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule.summary(),
            "events": self.events,
            "matched_frames": [{"field": path, "index": index} for path, index in self.matched_frames],
        }
