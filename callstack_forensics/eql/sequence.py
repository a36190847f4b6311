"""Matching ``sequence`` queries: a small state machine per join key.

For each join key (the values of the ``by`` fields) the matcher keeps the partial sequences
waiting at each bracket. An event is offered to the brackets from last to first and is used by
at most one of them: it completes or extends the newest waiting partial whose span still fits
``maxspan``, or else starts a new partial at the first bracket. An ``until`` event drops every
partial of its key. A span is only checked when both ends have timestamps: after the fact, a
missing time does not disqualify a sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .compiler import Evaluator
from .context import Context
from .values import scalars

_MAX_PARTIALS = 128


@dataclass(frozen=True, slots=True)
class CompiledStep:
    category: str
    condition: Evaluator
    keys: tuple[Evaluator, ...]
    alias: str | None = None
    uses_aliases: bool = False


@dataclass(frozen=True, slots=True)
class CompiledSequence:
    steps: tuple[CompiledStep, ...]
    maxspan_ms: float | None = None
    until: CompiledStep | None = None


@dataclass(slots=True)
class QueryMatch:
    """The events of one match (one, or one per bracket) and the array elements that made its
    ``_arraysearch`` calls hold."""

    events: list[Any]
    frames: list[tuple[str, int]] = field(default_factory=list)


@dataclass(slots=True)
class _Partial:
    events: list[Any]
    frames: list[tuple[str, int]]
    aliases: dict[str, Any]
    start_ms: float | None


class SequenceMatcher:
    """The state of one sequence query during one run."""

    def __init__(self, sequence: CompiledSequence) -> None:
        self.sequence = sequence
        self._waiting: dict[tuple[Any, ...], list[list[_Partial]]] = {}

    def feed(self, ctx: Context, event: Any, ts: float | None, stages: tuple[int, ...],
             until: bool) -> list[QueryMatch]:
        """Offer one event to the brackets ``stages`` (those of its category)."""
        ctx.event = event
        if until:
            self._apply_until(ctx)
        for stage in reversed(stages):
            step = self.sequence.steps[stage]
            key = _join_key(ctx, step)
            if key is None:
                continue
            if stage == 0:
                done = self._start(ctx, step, key, event, ts)
            else:
                done = self._advance(ctx, stage, key, event, ts)
            if done is not None:
                return done
        return []

    def _apply_until(self, ctx: Context) -> None:
        step = self.sequence.until
        assert step is not None
        key = _join_key(ctx, step)
        if key is not None and key in self._waiting and _holds(ctx, step, {}):
            del self._waiting[key]

    def _start(self, ctx: Context, step: CompiledStep, key: tuple[Any, ...], event: Any,
               ts: float | None) -> list[QueryMatch] | None:
        if not _holds(ctx, step, {}):
            return None
        aliases = {step.alias: event} if step.alias else {}
        partial = _Partial([event], list(ctx.frames), aliases, ts)
        return self._place(partial, 0, key)

    def _advance(self, ctx: Context, stage: int, key: tuple[Any, ...], event: Any,
                 ts: float | None) -> list[QueryMatch] | None:
        stages = self._waiting.get(key)
        if not stages or not stages[stage - 1]:
            return None
        waiting = stages[stage - 1]
        self._expire(waiting, ts)
        step = self.sequence.steps[stage]
        chosen = self._choose(ctx, step, waiting)
        if chosen is None:
            return None
        waiting.remove(chosen)
        chosen.events.append(event)
        chosen.frames.extend(ctx.frames)
        if step.alias:
            chosen.aliases[step.alias] = event
        return self._place(chosen, stage, key)

    def _choose(self, ctx: Context, step: CompiledStep, waiting: list[_Partial]) -> _Partial | None:
        if not waiting:
            return None
        if not step.uses_aliases:
            return waiting[-1] if _holds(ctx, step, {}) else None
        for partial in reversed(waiting):
            if _holds(ctx, step, partial.aliases):
                return partial
        return None

    def _expire(self, waiting: list[_Partial], ts: float | None) -> None:
        span = self.sequence.maxspan_ms
        if span is None or ts is None:
            return
        waiting[:] = [p for p in waiting if p.start_ms is None or ts - p.start_ms <= span]

    def _place(self, partial: _Partial, stage: int, key: tuple[Any, ...]) -> list[QueryMatch] | None:
        """Put a partial that just matched bracket ``stage``; report it if that was the last."""
        if stage == len(self.sequence.steps) - 1:
            return [QueryMatch(partial.events, partial.frames)]
        stages = self._waiting.setdefault(key, [[] for _ in self.sequence.steps])
        bucket = stages[stage]
        bucket.append(partial)
        if len(bucket) > _MAX_PARTIALS:
            del bucket[0]
        return []


def _holds(ctx: Context, step: CompiledStep, aliases: dict[str, Any]) -> bool:
    ctx.aliases = aliases
    ctx.frames.clear()
    try:
        return bool(step.condition(ctx))
    finally:
        ctx.aliases = {}


def _join_key(ctx: Context, step: CompiledStep) -> tuple[Any, ...] | None:
    """The values of the step's ``by`` expressions; None when one is null (no join on null)."""
    values: list[Any] = []
    for key in step.keys:
        value = key(ctx)
        if type(value) is list:
            items = tuple(scalars(value))
            if not items or not all(type(i) in _JOINABLE for i in items):
                return None
            values.append(items)
        elif type(value) in _JOINABLE:
            values.append(value)
        else:
            return None  # null, or an object: nothing to join on
    return tuple(values)


_JOINABLE = frozenset({str, int, float, bool})
