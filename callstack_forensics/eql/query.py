"""Compiling a whole query: an event query or a sequence, with its lineage sub-queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from . import ast
from .compiler import Evaluator, ExpressionCompiler, LineageNode, Scope
from .context import Context
from .errors import EqlSyntaxError
from .parser import parse_query
from .sequence import CompiledSequence, CompiledStep, QueryMatch


@dataclass(frozen=True, slots=True)
class CompiledEventQuery:
    category: str
    condition: Evaluator


@dataclass(frozen=True)
class CompiledQuery:
    """A query ready to run. ``event`` is set for an event query, ``sequence`` for a sequence;
    ``lineage`` lists its lineage sub-queries, inner ones first."""

    ast: ast.Query
    event: CompiledEventQuery | None = None
    sequence: CompiledSequence | None = None
    lineage: tuple[LineageNode, ...] = field(default=())

    @property
    def categories(self) -> frozenset[str]:
        """The event categories this query reads (``any`` for all)."""
        if self.event is not None:
            return frozenset({self.event.category})
        assert self.sequence is not None
        steps = list(self.sequence.steps) + ([self.sequence.until] if self.sequence.until else [])
        return frozenset(s.category for s in steps)

    def run(self, events: Iterable[Any]) -> list[QueryMatch]:
        """Every match of this query over ``events`` (see ``runner.run_queries``)."""
        from .runner import run_queries

        return [match for _, match in run_queries([self], events)]

    def matches(self, event: Any) -> bool:
        """Whether one event satisfies an event query, lineage aside (for quick checks)."""
        if self.event is None:
            raise TypeError("matches() is for event queries; use run() for a sequence")
        from .events import categories

        if self.event.category != "any" and self.event.category not in categories(event):
            return False
        ctx = Context()
        ctx.event = event
        return bool(self.event.condition(ctx))


def compile_query(query: str | bytes | ast.Query) -> CompiledQuery:
    """Parse (if given text) and compile a query; raises ``EqlSyntaxError``."""
    tree = query if isinstance(query, (ast.EventQuery, ast.Sequence)) else parse_query(query)
    lineage: list[LineageNode] = []
    try:
        if isinstance(tree, ast.EventQuery):
            compiled = _event_query(tree, Scope(), lineage)
            return CompiledQuery(tree, event=compiled, lineage=tuple(lineage))
        sequence = _sequence(tree, lineage)
        return CompiledQuery(tree, sequence=sequence, lineage=tuple(lineage))
    except RecursionError:
        raise EqlSyntaxError("the query nests too deeply") from None


def _event_query(node: ast.EventQuery, scope: Scope, lineage: list[LineageNode]) -> CompiledEventQuery:
    condition = ExpressionCompiler(scope, lineage).root_condition(node.condition)
    return CompiledEventQuery(node.category, condition)


def _sequence(node: ast.Sequence, lineage: list[LineageNode]) -> CompiledSequence:
    aliases: set[str] = set()
    steps: list[CompiledStep] = []
    for step in node.steps:
        steps.append(_step(step, node.by, frozenset(aliases), lineage))
        if step.alias:
            aliases.add(step.alias)
    until = _step(node.until, node.by, frozenset(), lineage) if node.until else None
    return CompiledSequence(tuple(steps), node.maxspan_ms, until)


def _step(step: ast.SequenceStep, sequence_by: tuple[ast.Expr, ...], aliases: frozenset[str],
          lineage: list[LineageNode]) -> CompiledStep:
    scope = Scope(aliases=aliases)
    compiler = ExpressionCompiler(scope, lineage)
    condition = compiler.root_condition(step.query.condition)
    keys = tuple(ExpressionCompiler(Scope(), lineage).value(k) for k in sequence_by + step.by)
    uses = bool(aliases) and _references_alias(step.query.condition, aliases)
    return CompiledStep(step.query.category, condition, keys, step.alias, uses)


def _references_alias(node: Any, aliases: frozenset[str]) -> bool:
    if isinstance(node, ast.Field):
        return len(node.path) > 1 and node.path[0] in aliases
    if isinstance(node, ast.Lineage) or not hasattr(node, "__dataclass_fields__"):
        return False
    for name in node.__dataclass_fields__:
        child = getattr(node, name)
        children = child if isinstance(child, tuple) else (child,)
        if any(_references_alias(c, aliases) for c in children):
            return True
    return False
