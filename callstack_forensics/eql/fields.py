"""Reading a dotted field from an event.

Events are nested dicts (ECS), sometimes with flattened dotted keys (``{"process.name": ...}``)
and with arrays of objects on the way (``process.thread.Ext.call_stack.symbol_info``): crossing
an array collects the field from every element, which makes it a multi-valued field.
The fast path is a plain chain of dict lookups; a missing key costs a few more lookups (for
flattened keys) and the general walk only runs when the chain meets an array or a dotted key.
"""

from __future__ import annotations

from typing import Any, Callable

Getter = Callable[[Any], Any]


def compile_getter(path: tuple[str, ...]) -> Getter:
    """A function reading ``path`` from an object: the value, a list of values, or None."""
    parts = _split(path)
    if not parts:
        return lambda obj: obj
    if len(parts) == 1:
        (key,) = parts
        return lambda obj: obj.get(key) if type(obj) is dict else _walk(obj, parts, 0)
    steps = tuple(zip(parts, _flattened_keys(parts)))

    def get(obj: Any) -> Any:
        cur = obj
        try:
            for key in parts:
                if key not in cur:  # a miss found without raising: a raise costs ~1.5 us, 11 a thread event
                    return _miss(obj, parts, steps)
                cur = cur[key]
            return cur
        except (KeyError, TypeError, IndexError):
            return _miss(obj, parts, steps)

    return get


def lookup(obj: Any, path: tuple[str, ...]) -> Any:
    """The general walk: nested keys, flattened dotted keys, and arrays of objects."""
    return _walk(obj, _split(path), 0)


def _split(path: tuple[str, ...]) -> tuple[str, ...]:
    if any("." in segment for segment in path):
        return tuple(p for segment in path for p in segment.split("."))
    return path


def _flattened_keys(parts: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """For each depth, the dotted keys that could stand for the remaining segments."""
    return tuple(tuple(".".join(parts[i:j]) for j in range(i + 2, len(parts) + 1)) for i in range(len(parts)))


def _miss(obj: Any, parts: tuple[str, ...], steps: tuple[tuple[str, tuple[str, ...]], ...]) -> Any:
    """The fast chain broke: find out whether it is a real miss before walking in general.
    ``steps``: each segment with the dotted keys that could stand for it and those after it."""
    cur = obj
    for key, dotted in steps:
        if type(cur) is dict:
            if dotted and not cur.keys().isdisjoint(dotted):
                return _walk(obj, parts, 0)
            if key not in cur:
                return None
            cur = cur[key]
        elif type(cur) is list:
            return _walk(obj, parts, 0)
        else:
            return None
    return cur


def _walk(obj: Any, parts: tuple[str, ...], start: int) -> Any:
    if start == len(parts):
        return obj
    if type(obj) is list:
        return _collect(obj, parts, start)
    if not isinstance(obj, dict):
        return None
    for end in range(start + 1, len(parts) + 1):
        key = parts[start] if end == start + 1 else ".".join(parts[start:end])
        if key in obj:
            found = _walk(obj[key], parts, end)
            if found is not None:
                return found
    return None


def _collect(items: list[Any], parts: tuple[str, ...], start: int) -> Any:
    values: list[Any] = []
    for item in items:
        found = _walk(item, parts, start)
        if found is None:
            continue
        if type(found) is list:
            values.extend(found)
        else:
            values.append(found)
    return values or None
