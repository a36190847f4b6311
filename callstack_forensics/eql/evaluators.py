"""Closure builders: the small functions compiled queries are made of.

Each builder returns a function of the evaluation ``Context``. They are kept apart from the
compiler, which decides which builder a syntax node needs, because these bodies are the hot path
and are written for speed (one call fewer per comparison, frames bookkeeping only when needed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from . import matchers
from .context import Context
from .functions import lifted
from .values import as_text, is_null, scalars, value_key

Evaluator = Callable[[Context], Any]


def all_of(parts: tuple[Evaluator, ...]) -> Evaluator:
    """``and`` of conditions, short-circuiting; the two-operand case (most rules) unrolled."""
    if len(parts) == 2:
        first, second = parts
        return lambda ctx: first(ctx) and second(ctx)

    def every(ctx: Context) -> bool:
        for part in parts:
            if not part(ctx):
                return False
        return True

    return every


@dataclass(frozen=True, slots=True)
class Reader:
    """A value source: ``read(ctx.event)`` when ``on_event``, ``read(element)`` for a
    ``$variable``, else ``read(ctx)``. Comparisons specialise on it to save a call."""

    read: Callable[[Any], Any]
    on_event: bool = False
    variable: str | None = None

    def evaluator(self) -> Evaluator:
        read, name = self.read, self.variable
        if self.on_event:
            return lambda ctx: read(ctx.event)
        if name is not None:
            return lambda ctx: read(ctx.vars[name][0])
        return read


def null_test(source: Reader, want_null: bool) -> Evaluator:
    value_of = source.evaluator()
    if want_null:
        return lambda ctx: is_null(value_of(ctx))
    return lambda ctx: not is_null(value_of(ctx))


def any_match(source: Reader, pred: matchers.Predicate, matches_null: bool) -> Evaluator:
    """The comparison holds for the value, or for any element of a multi-valued one."""
    read, name = source.read, source.variable
    if source.on_event:
        def match_event(ctx: Context) -> bool:
            value = read(ctx.event)
            if type(value) is str:
                return pred(value)
            return any_value(value, pred, matches_null)

        return match_event
    if name is not None:
        def match_variable(ctx: Context) -> bool:
            value = read(ctx.vars[name][0])
            if type(value) is str:
                return pred(value)
            return any_value(value, pred, matches_null)

        return match_variable

    def match(ctx: Context) -> bool:
        value = read(ctx)
        if type(value) is str:
            return pred(value)
        return any_value(value, pred, matches_null)

    return match


def any_value(value: Any, pred: matchers.Predicate, matches_null: bool) -> bool:
    if value is None:
        return matches_null
    if type(value) is list:
        found = False
        for item in scalars(value):
            found = True
            if pred(item):
                return True
        return matches_null and not found
    return pred(value)


def absent_match(source: Reader, pred: matchers.Predicate, matches_null: bool) -> Evaluator:
    """``!=`` and ``not in``: present, and no element satisfies ``pred``."""
    value_of = source.evaluator()

    def match(ctx: Context) -> bool:
        value = value_of(ctx)
        if value is None:
            return False
        if type(value) is list:
            found = False
            for item in scalars(value):
                found = True
                if pred(item):
                    return False
            return found
        return not pred(value)

    return match


def pairwise_test(op: str, ci: bool) -> Callable[[Any, Any], bool]:
    """How two runtime values compare, for comparisons whose right side is not literal."""
    if op in ("==", "!=", "in", "not in"):
        def equal(a: Any, b: Any) -> bool:
            key = value_key(a, ci)
            return key is not None and key == value_key(b, ci)

        return equal
    if op in ("<", "<=", ">", ">="):
        return lambda a, b: matchers.ordering(op, b)(a)
    cache: dict[Any, matchers.Predicate] = {}

    def textual(a: Any, b: Any) -> bool:
        pattern = as_text(b)
        if pattern is None:
            return False
        pred = cache.get(pattern)
        if pred is None:
            pred = runtime_pattern(op, pattern, ci)
            if len(cache) < 256:
                cache[pattern] = pred
        return pred(a)

    return textual


def runtime_pattern(op: str, pattern: str, ci: bool) -> matchers.Predicate:
    if op == "regex":
        try:
            return matchers.regex([pattern], ci)
        except re.error:
            return lambda value: False
    return matchers.wildcard([pattern], ci or op == ":")


def lift_apply(fn: Callable[[list[Any]], Any], values: list[Any]) -> Any:
    """Apply a value function, mapping it over multi-valued arguments."""
    if not any(type(v) is list for v in values):
        if any(v is None for v in values):
            return None
        return fn(values)
    combos = lifted(values)
    if combos is None:
        return None
    results = [r for r in (fn(c) for c in combos) if r is not None]
    return results or None


def array_search(array: Evaluator, path_of: Callable[[Context], str], var: str,
                  condition: Evaluator) -> Evaluator:
    def search(ctx: Context) -> bool:
        value = array(ctx)
        if value is None:
            return False
        items = value if type(value) is list else [value]
        path = path_of(ctx)
        bindings, frames = ctx.vars, ctx.frames
        saved = bindings.get(var)
        mark = len(frames)
        try:
            for index, item in enumerate(items):
                if item is None:
                    continue
                bindings[var] = (item, path, index)
                if condition(ctx):
                    frames.insert(mark, (path, index))
                    return True
                if len(frames) != mark:
                    del frames[mark:]
            return False
        finally:
            if saved is None:
                bindings.pop(var, None)
            else:
                bindings[var] = saved

    return search
