"""Rule matches as report rows: who (process, thread), which frames made the rule fire, and why.

A match carries the events it fired on (one, or one per bracket of a sequence) and, for
each ``_arraysearch`` that held, the searched array and the index of the element that
satisfied it; a row names those frames by their ``symbol_info`` and gathers the events'
evidence objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from ..eql.fields import lookup
from ..rules import Match


@dataclass(slots=True)
class DetectionRow:
    rule: str
    rule_id: str
    severity: str
    pid: int | None
    process: str | None
    tid: int | None
    frames: list[str] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    event_actions: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"rule": {"name": self.rule, "id": self.rule_id, "severity": self.severity}, "pid": self.pid,
                "process": self.process, "tid": self.tid, "frames": self.frames, "evidence": self.evidence,
                "events": self.event_actions}


def detection_row(match: Match) -> DetectionRow:
    events = match.events
    first = _subject(events)
    row = DetectionRow(match.rule.name, match.rule.id, match.rule.severity, _get(first, "process.pid"),
                       _get(first, "process.name"), _get(first, "process.thread.id"))
    row.frames = [f for f in (_frame(events, path, index) for path, index in match.matched_frames
                              if path.endswith(".call_stack")) if f]  # other arrays hold no frames
    row.evidence = [e["evidence"] for e in events if isinstance(e.get("evidence"), dict)]
    row.event_actions = [f"{_category(e)}/{_get(e, 'event.action')}" for e in events]
    return row


def matches_for_pids(matches: Iterable[Match], pids: set[int] | None) -> list[Match]:
    """The matches with an event of one of ``pids`` (all when ``pids`` is None)."""
    if pids is None:
        return list(matches)
    return [m for m in matches if any(_get(e, "process.pid") in pids for e in m.events)]


def _subject(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The event a row is about: the last of a sequence (the behaviour), the only one otherwise."""
    return events[-1] if events else {}


def _get(event: dict[str, Any], path: str) -> Any:
    try:
        value = lookup(event, (path,))
    except Exception:
        return None
    return value if isinstance(value, (int, str)) and not isinstance(value, bool) else None


def _category(event: dict[str, Any]) -> str:
    value = (event.get("event") or {}).get("category")
    return "|".join(value) if isinstance(value, list) else str(value)


def _frame(events: list[dict[str, Any]], path: str, index: int) -> str | None:
    for event in events:
        try:
            frames = lookup(event, (path,))
        except Exception:
            continue
        if isinstance(frames, list) and 0 <= index < len(frames) and isinstance(frames[index], dict):
            return f"{path}[{index}] {frames[index].get('symbol_info', '?')}"
    return None
