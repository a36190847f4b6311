"""Value semantics shared by comparisons and functions.

Types stay apart, as in Elastic: a string never equals a number and ``true`` never equals ``1``.
Only the text-matching operators (``:``, ``like``, ``regex``) and string functions read numbers
and booleans as their text, the way a keyword field would hold them.
"""

from __future__ import annotations

from typing import Any, Iterator


def is_number(value: Any) -> bool:
    kind = type(value)
    return kind is int or kind is float


def as_text(value: Any) -> str | None:
    """The text of a scalar, or None for null and structured values."""
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return str(value)
    return None


def value_key(value: Any, case_insensitive: bool = False) -> tuple[int, Any] | None:
    """A hashable key under which equal values (per the dialect) collide."""
    kind = type(value)
    if kind is str:
        return (2, value.lower() if case_insensitive else value)
    if kind is bool:
        return (0, value)
    if kind is int or kind is float:
        return (1, value)
    return None


def scalars(value: Any) -> Iterator[Any]:
    """The non-null scalars of a value: itself, or the elements of a (nested) array."""
    if value is None:
        return
    if type(value) is list:
        for item in value:
            yield from scalars(item)
    else:
        yield value


def is_null(value: Any) -> bool:
    """Missing, ``null``, or an array with no non-null element."""
    if value is None:
        return True
    if type(value) is list:
        return next(scalars(value), None) is None
    return False


def truthy(value: Any) -> bool:
    """Whether a value holds as a condition: ``true``, or an array containing ``true``."""
    if value is True:
        return True
    if type(value) is list:
        return any(v is True for v in scalars(value))
    return False


def ordered(op: str, left: Any, right: Any) -> bool:
    """``< <= > >=`` between two numbers or two strings; false across types."""
    if is_number(left) and is_number(right):
        pass
    elif type(left) is str and type(right) is str:
        pass
    else:
        return False
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right
