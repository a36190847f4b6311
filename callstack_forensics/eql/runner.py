"""Running many compiled queries over one event set in a single pass.

Events are dispatched by ``event.category``: each event meets only the queries (and sequence
brackets) of its categories plus those written ``any where``, so the cost grows with the rules
that could apply rather than with all rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from .compiler import Evaluator
from .context import Context
from .events import categories, order_events
from .lineage import LineageIndex
from .query import CompiledQuery
from .sequence import QueryMatch, SequenceMatcher


@dataclass(frozen=True, slots=True)
class _SequenceEntry:
    query: int
    stages: tuple[int, ...]
    until: bool


@dataclass(frozen=True, slots=True)
class _Handlers:
    events: tuple[tuple[int, Evaluator], ...]
    sequences: tuple[_SequenceEntry, ...]


class DispatchTable:
    """Which queries and sequence brackets apply to an event of given categories."""

    def __init__(self, queries: Sequence[CompiledQuery]) -> None:
        self._queries = queries
        self._cache: dict[tuple[str, ...], _Handlers] = {}

    def handlers(self, cats: tuple[str, ...]) -> _Handlers:
        found = self._cache.get(cats)
        if found is None:
            found = self._build(frozenset(cats) | {"any"})
            self._cache[cats] = found
        return found

    def _build(self, cats: frozenset[str]) -> _Handlers:
        events: list[tuple[int, Evaluator]] = []
        sequences: list[_SequenceEntry] = []
        for index, query in enumerate(self._queries):
            if query.event is not None:
                if query.event.category in cats:
                    events.append((index, query.event.condition))
                continue
            assert query.sequence is not None
            stages = tuple(i for i, s in enumerate(query.sequence.steps) if s.category in cats)
            until = query.sequence.until is not None and query.sequence.until.category in cats
            if stages or until:
                sequences.append(_SequenceEntry(index, stages, until))
        return _Handlers(tuple(events), tuple(sequences))


def run_queries(queries: Sequence[CompiledQuery], events: Iterable[Any]) -> list[tuple[int, QueryMatch]]:
    """Every match of every query, as (query index, match), in event order."""
    ordered = order_events(events)
    plain = [event for _, event in ordered]
    nodes = [node for query in queries for node in query.lineage]
    ctx = Context(LineageIndex.build(plain, nodes) if nodes else None)
    table = DispatchTable(queries)
    matchers = {i: SequenceMatcher(q.sequence) for i, q in enumerate(queries) if q.sequence}
    results: list[tuple[int, QueryMatch]] = []
    for ts, event in ordered:
        handlers = table.handlers(categories(event))
        if handlers.events:
            _run_event_queries(ctx, event, handlers.events, results)
        for entry in handlers.sequences:
            for match in matchers[entry.query].feed(ctx, event, ts, entry.stages, entry.until):
                results.append((entry.query, match))
    return results


def _run_event_queries(ctx: Context, event: Any, handlers: tuple[tuple[int, Evaluator], ...],
                       results: list[tuple[int, QueryMatch]]) -> None:
    ctx.event = event
    frames = ctx.frames
    for index, condition in handlers:
        if frames:
            frames.clear()
        if condition(ctx):
            results.append((index, QueryMatch([event], list(frames))))
