"""Questions about a parsed query that callers other than the evaluator ask.

``fields_read`` lists the event fields a query reads, with fields reached through
``_arraysearch`` written as ``array.field`` (``process.thread.Ext.call_stack.symbol_info``): the
contract between rules and whoever builds the events.
"""

from __future__ import annotations

from typing import Any

from . import ast


def fields_read(query: ast.Query) -> set[str]:
    """Dotted names of every event field the query reads (sequence aliases resolved away)."""
    found: set[str] = set()
    if isinstance(query, ast.EventQuery):
        _walk(query.condition, {}, frozenset(), found)
        return found
    aliases: set[str] = set()
    for step in query.steps:
        _walk(step.query.condition, {}, frozenset(aliases), found)
        for key in query.by + step.by:
            _walk(key, {}, frozenset(), found)
        if step.alias:
            aliases.add(step.alias)
    if query.until:
        _walk(query.until.query.condition, {}, frozenset(), found)
    return found


def _walk(node: Any, variables: dict[str, str], aliases: frozenset[str], found: set[str]) -> None:
    if isinstance(node, ast.Field):
        path = node.path[1:] if len(node.path) > 1 and node.path[0] in aliases else node.path
        found.add(".".join(path))
        return
    if isinstance(node, ast.VarRef):
        base = variables.get(node.name)
        if base is not None:
            found.add(".".join((base, *node.path)) if node.path else base)
        return
    if isinstance(node, ast.ArraySearch):
        _walk(node.array, variables, aliases, found)
        base = _array_name(node.array, variables)
        inner = dict(variables)
        if base is not None:
            inner[node.var] = base
        _walk(node.condition, inner, aliases, found)
        return
    if isinstance(node, ast.Lineage):
        _walk(node.query.condition, {}, frozenset(), found)
        return
    for name in getattr(node, "__dataclass_fields__", ()):
        child = getattr(node, name)
        for item in child if isinstance(child, tuple) else (child,):
            _walk(item, variables, aliases, found)


def _array_name(node: ast.Expr, variables: dict[str, str]) -> str | None:
    if isinstance(node, ast.Field):
        return node.name
    if isinstance(node, ast.VarRef) and node.name in variables:
        return ".".join((variables[node.name], *node.path))
    return None
