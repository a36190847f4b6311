"""Reading a dotted field from an event.

Events are nested dicts (ECS), sometimes with flattened dotted keys (``{"process.name": ...}``)
and with arrays of objects on the way (``process.thread.Ext.call_stack.symbol_info``): crossing
an array collects the field from every element, which makes it a multi-valued field.
The fast path is a plain chain of dict lookups; the slower general walk only runs when that chain
breaks.
"""

from __future__ import annotations

from typing import Any, Callable

Getter = Callable[[Any], Any]


def compile_getter(path: tuple[str, ...]) -> Getter:
    """A function reading ``path`` from an object: the value, a list of values, or None."""
    if not path:
        return lambda obj: obj
    if len(path) == 1:
        return _getter_1(path)
    if len(path) == 2:
        return _getter_2(path)
    return _getter_n(path)


def _getter_1(path: tuple[str, ...]) -> Getter:
    (key,) = path

    def get(obj: Any) -> Any:
        try:
            return obj[key]
        except (KeyError, TypeError, IndexError):
            return lookup(obj, path)

    return get


def _getter_2(path: tuple[str, ...]) -> Getter:
    first, second = path

    def get(obj: Any) -> Any:
        try:
            return obj[first][second]
        except (KeyError, TypeError, IndexError):
            return lookup(obj, path)

    return get


def _getter_n(path: tuple[str, ...]) -> Getter:
    def get(obj: Any) -> Any:
        cur = obj
        try:
            for key in path:
                cur = cur[key]
            return cur
        except (KeyError, TypeError, IndexError):
            return lookup(obj, path)

    return get


def lookup(obj: Any, path: tuple[str, ...]) -> Any:
    """The general walk: nested keys, flattened dotted keys, and arrays of objects."""
    parts = tuple(p for segment in path for p in segment.split(".")) if _has_dots(path) else path
    return _walk(obj, parts, 0)


def _has_dots(path: tuple[str, ...]) -> bool:
    return any("." in segment for segment in path)


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
