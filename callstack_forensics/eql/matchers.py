"""Predicates on one scalar, built once when a query compiles.

A comparison against literals (the shape of nearly every rule) becomes one of these: a set
lookup for ``==``/``in``, prefix/suffix/substring tests for the common wildcard shapes, and a
single compiled regex only for the rest. That keeps hundreds of rules over tens of thousands of
events cheap.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

from .strings import wildcard_regex
from .values import as_text, ordered, value_key

Predicate = Callable[[Any], bool]


def equality(values: Iterable[Any], case_insensitive: bool) -> Predicate:
    """``==``, ``in``, ``in~``: the value equals one of ``values``."""
    keys = {k for k in (value_key(v, case_insensitive) for v in values) if k is not None}
    if len(keys) == 1:
        return _single_equality(next(iter(keys)), case_insensitive)
    strings = frozenset(v for tag, v in keys if tag == 2)
    others = frozenset(k for k in keys if k[0] != 2)

    def pred(value: Any) -> bool:
        if type(value) is str:
            return (value.lower() if case_insensitive else value) in strings
        key = value_key(value)
        return key is not None and key in others

    return pred


def _single_equality(key: tuple[int, Any], case_insensitive: bool) -> Predicate:
    tag, expected = key
    if tag == 2 and case_insensitive:
        return lambda value: type(value) is str and value.lower() == expected
    if tag == 2:
        return lambda value: value == expected and type(value) is str
    if tag == 0:
        return lambda value: value is expected
    return lambda value: value == expected and (type(value) is int or type(value) is float)


def wildcard(patterns: Iterable[str], case_insensitive: bool) -> Predicate:
    """``:``, ``like``, ``like~``: the value's text matches one of the wildcard patterns."""
    fold = str.lower if case_insensitive else _same
    exact: set[str] = set()
    prefixes: list[str] = []
    suffixes: list[str] = []
    infixes: list[str] = []
    regexes: list[str] = []
    for raw in patterns:
        _classify(fold(raw), exact, prefixes, suffixes, infixes, regexes)
    return _wildcard_predicate(case_insensitive, frozenset(exact), tuple(prefixes), tuple(suffixes),
                               tuple(infixes), _combined(regexes))


def _same(text: str) -> str:
    return text


def _classify(pattern: str, exact: set[str], prefixes: list[str], suffixes: list[str],
              infixes: list[str], regexes: list[str]) -> None:
    if "?" not in pattern:
        stars = pattern.count("*")
        if stars == 0:
            exact.add(pattern)
            return
        core = pattern.strip("*")
        if "*" not in core:
            if pattern.startswith("*") and pattern.endswith("*"):
                infixes.append(core)
                return
            if pattern.endswith("*") and stars == len(pattern) - len(pattern.rstrip("*")):
                prefixes.append(core)
                return
            if pattern.startswith("*") and stars == len(pattern) - len(pattern.lstrip("*")):
                suffixes.append(core)
                return
    regexes.append(wildcard_regex(pattern))


def _combined(regexes: list[str]) -> Callable[[str], Any] | None:
    if not regexes:
        return None
    return re.compile("|".join(f"(?:{r})" for r in regexes), re.DOTALL).fullmatch


def _wildcard_predicate(case_insensitive: bool, exact: frozenset[str], prefixes: tuple[str, ...],
                        suffixes: tuple[str, ...], infixes: tuple[str, ...],
                        regex: Callable[[str], Any] | None) -> Predicate:
    def pred(value: Any) -> bool:
        text = value if type(value) is str else as_text(value)
        if text is None:
            return False
        if case_insensitive:
            text = text.lower()
        if text in exact:
            return True
        if prefixes and text.startswith(prefixes):
            return True
        if suffixes and text.endswith(suffixes):
            return True
        for infix in infixes:
            if infix in text:
                return True
        return regex is not None and regex(text) is not None

    return pred


def regex(patterns: Iterable[str], case_insensitive: bool) -> Predicate:
    """``regex``, ``regex~``: the whole text matches one of the patterns.

    Raises ``re.error`` for an invalid pattern; the compiler turns it into a syntax error.
    """
    flags = re.DOTALL | (re.IGNORECASE if case_insensitive else 0)
    compiled = [re.compile(p, flags).fullmatch for p in patterns]

    def pred(value: Any) -> bool:
        text = value if type(value) is str else as_text(value)
        if text is None:
            return False
        return any(match(text) is not None for match in compiled)

    return pred


def ordering(op: str, bound: Any) -> Predicate:
    """``< <= > >=`` against a literal."""
    return lambda value: ordered(op, value, bound)
