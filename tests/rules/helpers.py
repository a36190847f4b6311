"""Small event builders shared by the rule-engine tests."""

from __future__ import annotations

from typing import Any

from callstack_forensics.eql import compile_query


def event(category: str | list[str] | None = "process", **fields: Any) -> dict[str, Any]:
    """An event with ``event.category`` and dotted keyword fields expanded into nested dicts."""
    out: dict[str, Any] = {}
    if category is not None:
        out["event"] = {"category": category}
    for dotted, value in fields.items():
        cur = out
        *path, last = dotted.split("__")
        for part in path:
            cur = cur.setdefault(part, {})
        cur[last] = value
    return out


def holds(query: str, ev: dict[str, Any]) -> bool:
    """Whether an event query matches one event."""
    return compile_query(query).matches(ev)


def where(condition: str, ev: dict[str, Any]) -> bool:
    return holds(f"any where {condition}", ev)
