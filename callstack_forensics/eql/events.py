"""What the engine needs to know about an ECS event: its categories, its time, its process.

Events built from a memory image often have no timestamp (an image shows state, not history), so
ordering is stable: events are sorted by ``@timestamp`` where they have one, and an event without
one keeps its place after the event before it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

from .fields import compile_getter

_category = compile_getter(("event", "category"))
_timestamp = compile_getter(("@timestamp",))
_entity_id = compile_getter(("process", "entity_id"))
_pid = compile_getter(("process", "pid"))
_parent_entity_id = compile_getter(("process", "parent", "entity_id"))
_parent_pid = compile_getter(("process", "parent", "pid"))

ProcessKey = Any  # an entity id (str) or ("pid", number)


def categories(event: Any) -> tuple[str, ...]:
    """``event.category`` as a tuple (it may be a string or a list)."""
    value = _category(event)
    if type(value) is str:
        return (value,)
    if type(value) is list:
        return tuple(v for v in value if type(v) is str)
    return ()


def timestamp_ms(event: Any) -> float | None:
    """``@timestamp`` in milliseconds: ISO 8601 text or epoch milliseconds; None if absent."""
    value = _timestamp(event)
    if type(value) is int or type(value) is float:
        return float(value)
    if type(value) is not str:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp() * 1000.0
    except (ValueError, OverflowError):
        return None


def order_events(events: Iterable[Any]) -> list[tuple[float | None, Any]]:
    """Events with their timestamps, in time order; untimed events keep their place."""
    keyed: list[tuple[float, int, float | None, Any]] = []
    carried = float("-inf")
    for position, event in enumerate(events):
        ts = timestamp_ms(event)
        if ts is not None:
            carried = ts
        keyed.append((carried, position, ts, event))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [(ts, event) for _, _, ts, event in keyed]


def process_keys(event: Any) -> tuple[ProcessKey, ...]:
    """The keys naming the event's process: entity id and/or pid."""
    return _keys(_entity_id(event), _pid(event))


def parent_keys(event: Any) -> tuple[ProcessKey, ...]:
    """The keys naming the event's parent process."""
    return _keys(_parent_entity_id(event), _parent_pid(event))


def _keys(entity_id: Any, pid: Any) -> tuple[ProcessKey, ...]:
    keys: list[ProcessKey] = []
    if type(entity_id) is str and entity_id:
        keys.append(entity_id)
    if type(pid) is int:
        keys.append(("pid", pid))
    return tuple(keys)
