"""Syntax tree to Python closures.

Each expression node becomes a function of the evaluation ``Context``. Comparisons against
literals are specialised into scalar predicates (see ``matchers``) applied with the dialect's
multi-valued rule: a comparison on an array holds if any element satisfies it.

Null semantics (documented in rules/README.md): a missing field is ``null``; ``f == null`` and
``f != null`` test presence; every other comparison involving ``null`` is false, and ``!=`` is
"present and not equal" (so ``f != "x"`` is false when ``f`` is missing, and false when any
element of a multi-valued ``f`` equals ``"x"``); ``not`` is plain negation, so
``not f : "x"`` is true when ``f`` is missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from . import ast, evaluators, matchers
from .context import Context
from .errors import EqlSyntaxError
from .fields import compile_getter
from .functions import IMPLEMENTATIONS, SIGNATURES, arithmetic, fn_length, lifted
from .values import as_text, scalars, truthy

Evaluator = evaluators.Evaluator

_NO_LIST = "a list (a, b, ...) is only allowed after in, in~, :, like or regex"


@dataclass(frozen=True, slots=True)
class LineageNode:
    """A ``descendant of`` / ``child of`` / ``event of`` sub-query, keyed by its syntax so that
    identical sub-queries across rules are evaluated once per run."""

    key: ast.EventQuery
    condition: Evaluator = field(compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class Scope:
    """Names visible at a point of a query: ``$vars`` of enclosing ``_arraysearch`` calls and
    aliases of earlier sequence brackets."""

    variables: frozenset[str] = frozenset()
    aliases: frozenset[str] = frozenset()


def _error(message: str, node: Any) -> EqlSyntaxError:
    pos = getattr(node, "pos", ast.Pos())
    return EqlSyntaxError(message, pos.line, pos.column)


class ExpressionCompiler:
    """Compiles expressions in one scope, collecting the lineage sub-queries it meets."""

    def __init__(self, scope: Scope, lineage: list[LineageNode]) -> None:
        self.scope = scope
        self.lineage = lineage

    def nested(self, scope: Scope) -> "ExpressionCompiler":
        return ExpressionCompiler(scope, self.lineage)

    # -- entry points --

    def condition(self, node: ast.Expr) -> Evaluator:
        """An evaluator returning a strict bool."""
        evaluator = self.value(node)
        if _is_boolean(node):
            return evaluator
        return lambda ctx: truthy(evaluator(ctx))

    def root_condition(self, node: ast.Expr) -> Evaluator:
        """A whole ``where`` condition: when it fails the run drops every frame anyway, so a
        top-level ``and`` needs no frame bookkeeping of its own."""
        if isinstance(node, ast.And):
            return evaluators.all_of(tuple(self.condition(o) for o in node.operands))
        return self.condition(node)

    def value(self, node: ast.Expr) -> Evaluator:
        method = getattr(self, "_" + type(node).__name__.lower())
        return method(node)

    # -- leaves --

    def _literal(self, node: ast.Literal) -> Evaluator:
        value = node.value
        return lambda ctx: value

    def _field(self, node: ast.Field) -> Evaluator:
        alias = node.path[0] if len(node.path) > 1 and node.path[0] in self.scope.aliases else None
        if alias is not None:
            getter = compile_getter(node.path[1:])
            return lambda ctx: getter(ctx.aliases.get(alias))
        getter = compile_getter(node.path)
        return lambda ctx: getter(ctx.event)

    def _reader(self, node: ast.Expr) -> "evaluators.Reader":
        """How a comparison reads its left side: straight from the event when it is a plain
        field (the common case, one call fewer), else through its evaluator."""
        if isinstance(node, ast.Field) and not (len(node.path) > 1 and node.path[0] in self.scope.aliases):
            return evaluators.Reader(compile_getter(node.path), on_event=True)
        if isinstance(node, ast.VarRef):
            self._varref(node)  # scope check
            return evaluators.Reader(compile_getter(node.path), variable=node.name)
        return evaluators.Reader(self.value(node))

    def _varref(self, node: ast.VarRef) -> Evaluator:
        if node.name not in self.scope.variables:
            raise _error(f"unknown variable ${node.name}: a $variable only exists inside the "
                         "_arraysearch(...) call that names it", node)
        name = node.name
        getter = compile_getter(node.path)
        return lambda ctx: getter(ctx.vars[name][0])

    def _listexpr(self, node: ast.ListExpr) -> Evaluator:
        raise _error(_NO_LIST, node)

    # -- logic --

    def _not(self, node: ast.Not) -> Evaluator:
        inner = self.condition(node.operand)
        if not _searches_arrays(node.operand):
            return lambda ctx: not inner(ctx)

        def negate(ctx: Context) -> bool:
            mark = len(ctx.frames)
            result = inner(ctx)
            del ctx.frames[mark:]  # frames under a `not` never explain a match
            return not result

        return negate

    def _and(self, node: ast.And) -> Evaluator:
        parts = tuple(self.condition(o) for o in node.operands)
        if not _searches_arrays(node):
            return evaluators.all_of(parts)
        every = evaluators.all_of(parts)

        def conjunction(ctx: Context) -> bool:
            mark = len(ctx.frames)
            if every(ctx):
                return True
            del ctx.frames[mark:]
            return False

        return conjunction

    def _or(self, node: ast.Or) -> Evaluator:
        parts = tuple(self.condition(o) for o in node.operands)

        def disjunction(ctx: Context) -> bool:
            for part in parts:
                if part(ctx):
                    return True
            return False

        return disjunction

    # -- comparisons --

    def _compare(self, node: ast.Compare) -> Evaluator:
        left, right = node.left, node.right
        if _is_null(left) and not _is_null(right):
            left, right = right, left
        if _is_null(right) and node.op in ("==", "!="):
            return evaluators.null_test(self._reader(left), node.op == "==")
        literals = _literals(right)
        if literals is not None:
            return self._static_compare(node, left, literals)
        return self._dynamic_compare(node, left, right)

    def _static_compare(self, node: ast.Compare, left: ast.Expr, literals: list[Any]) -> Evaluator:
        if any(v is None for v in literals) and node.op not in ("in", "not in"):
            return lambda ctx: False
        pred = self._predicate(node, [v for v in literals if v is not None])
        source = self._reader(left)
        matches_null = None in literals
        if node.op in ("!=", "not in"):
            return evaluators.absent_match(source, pred, matches_null)
        return evaluators.any_match(source, pred, matches_null)

    def _predicate(self, node: ast.Compare, literals: list[Any]) -> matchers.Predicate:
        op, ci = node.op, node.case_insensitive
        if op in ("==", "!=", "in", "not in"):
            return matchers.equality(literals, ci)
        if op in ("<", "<=", ">", ">="):
            return matchers.ordering(op, literals[0])
        texts = [as_text(v) for v in literals]
        if op == "regex":
            return _regex_predicate(node, [t for t in texts if t is not None], ci)
        if op == ":" and not any(type(v) is str for v in literals):
            return matchers.equality(literals, True)
        return matchers.wildcard([t for t in texts if t is not None], ci or op == ":")

    def _dynamic_compare(self, node: ast.Compare, left: ast.Expr, right: ast.Expr) -> Evaluator:
        items = right.items if isinstance(right, ast.ListExpr) else (right,)
        sources = tuple(self.value(i) for i in items)
        source = self.value(left)
        test = evaluators.pairwise_test(node.op, node.case_insensitive)
        negated = node.op in ("!=", "not in")

        def compare(ctx: Context) -> bool:
            lefts = list(scalars(source(ctx)))
            if not lefts:
                return False
            rights = [v for s in sources for v in scalars(s(ctx))]
            hit = any(test(a, b) for a in lefts for b in rights)
            return not hit if negated else hit

        return compare

    # -- values --

    def _arith(self, node: ast.Arith) -> Evaluator:
        left, right, op = self.value(node.left), self.value(node.right), node.op

        def compute(ctx: Context) -> Any:
            return evaluators.lift_apply(lambda args: arithmetic(op, args[0], args[1]), [left(ctx), right(ctx)])

        return compute

    def _negate(self, node: ast.Negate) -> Evaluator:
        inner = self.value(node.operand)
        return lambda ctx: evaluators.lift_apply(lambda args: arithmetic("-", 0, args[0]), [inner(ctx)])

    def _call(self, node: ast.Call) -> Evaluator:
        for arg in node.args:
            if isinstance(arg, ast.ListExpr):
                raise _error(_NO_LIST, arg)
        if node.name == "length":
            inner = self.value(node.args[0])
            return lambda ctx: fn_length(inner(ctx))
        if node.name in ("wildcard", "cidrmatch") and _literals_only(node.args[1:]):
            return self._static_match_call(node)
        return self._generic_call(node)

    def _static_match_call(self, node: ast.Call) -> Evaluator:
        source = self._reader(node.args[0])
        literals = [a.value for a in node.args[1:]]  # type: ignore[union-attr]
        if node.name == "wildcard":
            pred = matchers.wildcard([t for t in map(as_text, literals) if t is not None],
                                     node.case_insensitive)
        else:
            pred = _cidr_predicate(node, literals)
        return evaluators.any_match(source, pred, False)

    def _generic_call(self, node: ast.Call) -> Evaluator:
        args = tuple(self.value(a) for a in node.args)
        impl = IMPLEMENTATIONS[node.name]
        ci = node.case_insensitive
        if SIGNATURES[node.name].predicate:
            def predicate(ctx: Context) -> bool:
                combos = lifted([a(ctx) for a in args])
                return combos is not None and any(impl(c, ci) is True for c in combos)

            return predicate

        def compute(ctx: Context) -> Any:
            return evaluators.lift_apply(lambda values: impl(values, ci), [a(ctx) for a in args])

        return compute

    def _arraysearch(self, node: ast.ArraySearch) -> Evaluator:
        array = self.value(node.array)
        path_of = self._path_of(node.array)
        inner_scope = replace(self.scope, variables=self.scope.variables | {node.var})
        condition = self.nested(inner_scope).condition(node.condition)
        return evaluators.array_search(array, path_of, node.var, condition)

    def _path_of(self, node: ast.Expr) -> Callable[[Context], str]:
        """How to name the searched array in ``matched_frames``."""
        if isinstance(node, ast.Field):
            name = node.name
            return lambda ctx: name
        if isinstance(node, ast.VarRef):
            var, suffix = node.name, "".join("." + p for p in node.path)

            def var_path(ctx: Context) -> str:
                _, parent, index = ctx.vars[var]
                return f"{parent}[{index}]{suffix}"

            return var_path
        return lambda ctx: "<expression>"

    def _lineage(self, node: ast.Lineage) -> Evaluator:
        inner = ExpressionCompiler(Scope(), self.lineage)
        condition = inner.root_condition(node.query.condition)
        self.lineage.append(LineageNode(node.query, condition))
        key, relation = node.query, node.relation

        def related(ctx: Context) -> bool:
            return ctx.lineage is not None and ctx.lineage.related(ctx.event, key, relation)

        return related


# ---- helpers ------------------------------------------------------------------------------

_BOOLEAN_NODES = (ast.Compare, ast.And, ast.Or, ast.Not, ast.ArraySearch, ast.Lineage)


def _is_boolean(node: ast.Expr) -> bool:
    if isinstance(node, _BOOLEAN_NODES):
        return True
    return isinstance(node, ast.Call) and SIGNATURES[node.name].predicate


def _searches_arrays(node: Any) -> bool:
    if isinstance(node, ast.ArraySearch):
        return True
    if isinstance(node, ast.Lineage) or not hasattr(node, "__dataclass_fields__"):
        return False
    for name in node.__dataclass_fields__:
        child = getattr(node, name)
        children = child if isinstance(child, tuple) else (child,)
        if any(_searches_arrays(c) for c in children):
            return True
    return False


def _is_null(node: ast.Expr) -> bool:
    return isinstance(node, ast.Literal) and node.value is None


def _literals(node: ast.Expr) -> list[Any] | None:
    items = node.items if isinstance(node, ast.ListExpr) else (node,)
    if all(isinstance(i, ast.Literal) for i in items):
        return [i.value for i in items]  # type: ignore[union-attr]
    return None


def _literals_only(nodes: tuple[ast.Expr, ...]) -> bool:
    return all(isinstance(n, ast.Literal) for n in nodes)


def _regex_predicate(node: ast.Compare, patterns: list[str], ci: bool) -> matchers.Predicate:
    try:
        return matchers.regex(patterns, ci)
    except re.error as exc:
        raise _error(f"invalid regular expression: {exc}", node.right) from None


def _cidr_predicate(node: ast.Call, literals: list[Any]) -> matchers.Predicate:
    import ipaddress

    networks = []
    for arg, literal in zip(node.args[1:], literals):
        try:
            networks.append(ipaddress.ip_network(str(literal), strict=False))
        except ValueError:
            raise _error(f"{literal!r} is not an IPv4 or IPv6 CIDR block", arg) from None

    def pred(value: Any) -> bool:
        try:
            address = ipaddress.ip_address(str(value).strip())
        except ValueError:
            return False
        return any(address.version == n.version and address in n for n in networks)

    return pred
