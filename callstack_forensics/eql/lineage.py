"""The process tree of an event set, for ``descendant of``, ``child of`` and ``event of``.

Processes are named by ``process.entity_id`` and, as a fallback when a producer has no entity
ids, by ``process.pid`` (with the usual caveat that pids are reused). The tree comes from the
``process`` events of the set; each lineage sub-query is evaluated once over the whole set and
remembered as the set of processes it matched.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from . import ast
from .compiler import LineageNode
from .context import Context
from .events import ProcessKey, categories, parent_keys, process_keys

_MAX_DEPTH = 512


class LineageIndex:
    """Parent links between processes and the processes each lineage sub-query matched."""

    def __init__(self, parents: dict[ProcessKey, tuple[ProcessKey, ...]]) -> None:
        self._parents = parents
        # keyed by id() of each rule's sub-query node: hashing a syntax tree per call is costly
        self._matched: dict[int, frozenset[ProcessKey]] = {}
        self._ancestors: dict[int, frozenset[ProcessKey]] = {}

    @classmethod
    def build(cls, events: Sequence[Any], nodes: Iterable[LineageNode]) -> "LineageIndex":
        parents: dict[ProcessKey, tuple[ProcessKey, ...]] = {}
        for event in events:
            if "process" in categories(event):
                up = parent_keys(event)
                for key in process_keys(event):
                    if up or key not in parents:
                        parents[key] = up
        index = cls(parents)
        by_syntax: dict[ast.EventQuery, frozenset[ProcessKey]] = {}
        for node in nodes:  # post-order: inner sub-queries first
            matched = by_syntax.get(node.key)
            if matched is None:
                matched = by_syntax[node.key] = index._evaluate(node, events)
            index._matched[id(node.key)] = matched
        return index

    def _evaluate(self, node: LineageNode, events: Sequence[Any]) -> frozenset[ProcessKey]:
        ctx = Context(self)
        category = node.key.category
        matched: set[ProcessKey] = set()
        for event in events:
            if category != "any" and category not in categories(event):
                continue
            ctx.event = event
            ctx.frames.clear()
            if node.condition(ctx):
                matched.update(process_keys(event))
        return frozenset(matched)

    def related(self, event: Any, key: ast.EventQuery, relation: str) -> bool:
        matched = self._matched.get(id(key))
        if not matched:
            return False
        if relation == "event":
            candidates: Iterable[ProcessKey] = process_keys(event)
        elif relation == "child":
            candidates = parent_keys(event)
        else:
            candidates = self.ancestors(event)
        return any(c in matched for c in candidates)

    def ancestors(self, event: Any) -> frozenset[ProcessKey]:
        """Every process above the event's process, nearest first in discovery."""
        cached = self._ancestors.get(id(event))
        if cached is not None:
            return cached
        seen: set[ProcessKey] = set(process_keys(event))
        found: set[ProcessKey] = set()
        frontier = list(parent_keys(event))
        for _ in range(_MAX_DEPTH):
            fresh = [k for k in frontier if k not in seen]
            if not fresh:
                break
            seen.update(fresh)
            found.update(fresh)
            frontier = [p for k in fresh for p in self._parents.get(k, ())]
        result = frozenset(found)
        self._ancestors[id(event)] = result
        return result
