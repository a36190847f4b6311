"""Text to syntax tree: the lark grammar (``eql.lark``) and a transformer to typed nodes.

Every failure, whether lark's or a check made while building the tree, surfaces as one
``EqlSyntaxError`` with the line and column of the offending token and a message in the terms of
the query language (``expected ']'``), never in the parser's (``RSQB``).
"""

from __future__ import annotations

from types import MappingProxyType
import functools
import re
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedInput, VisitError

from . import ast
from .diagnostics import explain
from .errors import EqlSyntaxError
from .functions import ALIASES, SIGNATURES
from .parser_tables import load_parser
from .strings import decode_quoted

_DURATION_MS = MappingProxyType({"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000})
_LIST_OPS = frozenset({"in", "not in", ":", "like", "regex"})
_MAX_RUNS = 100



def warm_parser() -> None:
    """Build the parser tables now (a process that forks workers gives them the built parser)."""
    _lark()


@functools.cache
def _lark() -> Lark:
    grammar = resources.files(__package__).joinpath("eql.lark").read_text(encoding="utf-8")
    return load_parser(grammar, {"parser": "lalr", "lexer": "basic", "propagate_positions": True,
                                 "maybe_placeholders": False})


def parse_query(text: str | bytes) -> ast.Query:
    """Parse one query into its syntax tree, or raise ``EqlSyntaxError``."""
    text = _as_text(text)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise explain(exc, text, _lark().terminals) from None
    except LarkError as exc:  # pragma: no cover - lark's other errors are grammar bugs
        raise EqlSyntaxError(str(exc)) from None
    try:
        return _Builder().transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, EqlSyntaxError):
            raise exc.orig_exc from None
        if isinstance(exc.orig_exc, RecursionError):
            raise EqlSyntaxError("the query nests too deeply") from None
        raise
    except RecursionError:
        raise EqlSyntaxError("the query nests too deeply") from None


def _as_text(text: str | bytes) -> str:
    if isinstance(text, bytes):
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EqlSyntaxError(f"the query is not valid UTF-8 (byte {exc.start})") from None
    if not isinstance(text, str):
        raise TypeError(f"a query is text, not {type(text).__name__}")
    return text


# ---- tree building ----------------------------------------------------------------------

def _pos(item: Any) -> ast.Pos:
    if isinstance(item, Token):
        return ast.Pos(item.line or 1, item.column or 1)
    line = getattr(item, "line", None)
    column = getattr(item, "column", None)
    return ast.Pos(line or 1, column or 1)


def _fail(message: str, where: Any) -> EqlSyntaxError:
    pos = where if isinstance(where, ast.Pos) else _pos(where)
    return EqlSyntaxError(message, pos.line, pos.column)


def _node_pos(node: Any) -> ast.Pos:
    return getattr(node, "pos", ast.Pos())


@v_args(meta=True)
class _Builder(Transformer):
    """Turns lark's parse tree into ``ast`` nodes, checking what the grammar cannot."""

    def start(self, meta: Any, children: list[Any]) -> ast.Query:
        return children[0]

    # -- queries --

    def event_query(self, meta: Any, children: list[Any]) -> ast.EventQuery:
        category, condition = children
        return ast.EventQuery(category, condition, _pos(meta))

    def event_class(self, meta: Any, children: list[Token]) -> str:
        token = children[0]
        if token.type == "FIELD":
            if "." in token:
                raise _fail(f"event category {str(token)!r} must be a single word "
                            "(quote it if it contains dots)", token)
            return str(token)
        if token.type == "TRIPLE_STRING":
            return str(token)[3:-3]
        return decode_quoted(str(token), token.line, token.column)

    def sequence(self, meta: Any, children: list[Any]) -> ast.Sequence:
        options = [c for c in children if isinstance(c, tuple)]
        steps = [c for c in children if isinstance(c, ast.SequenceStep)]
        until = next((c for c in children if isinstance(c, _Until)), None)
        by, maxspan = _sequence_options(options)
        expanded = _expand_runs(steps)
        sequence = ast.Sequence(tuple(expanded), by, maxspan, until.step if until else None, _pos(meta))
        _check_join_keys(sequence)
        _check_aliases(sequence)
        return sequence

    def sequence_by(self, meta: Any, children: list[Any]) -> tuple[str, Any, ast.Pos]:
        return ("by", children[0], _pos(meta))

    def sequence_maxspan(self, meta: Any, children: list[Token]) -> tuple[str, Any, ast.Pos]:
        token = children[0]
        number, unit = re.fullmatch(r"(\d+)(ms|s|m|h|d)", str(token)).groups()  # type: ignore[union-attr]
        return ("maxspan", _to_int(number, token) * _DURATION_MS[unit], _pos(token))

    def sequence_step(self, meta: Any, children: list[Any]) -> ast.SequenceStep:
        query, options = children[0], children[1:]
        by: tuple[ast.Expr, ...] = ()
        runs, alias = 1, None
        seen: set[str] = set()
        for kind, value, pos in options:
            if kind in seen:
                raise _fail(f"'{_OPTION_WORDS[kind]}' is given twice for one bracket", pos)
            seen.add(kind)
            if kind == "by":
                by = value
            elif kind == "runs":
                runs = value
            else:
                alias = value
        if alias is not None and runs > 1:
            raise _fail("a bracket with runs cannot also have an alias", _pos(meta))
        return ast.SequenceStep(query, by, runs, alias, _pos(meta))

    def step_by(self, meta: Any, children: list[Any]) -> tuple[str, Any, ast.Pos]:
        return ("by", children[0], _pos(meta))

    def step_runs(self, meta: Any, children: list[Token]) -> tuple[str, Any, ast.Pos]:
        token = children[0]
        runs = _to_int(str(token), token) if re.fullmatch(r"\d+", str(token)) else 0
        if not 1 <= runs <= _MAX_RUNS:
            raise _fail(f"runs must be a whole number from 1 to {_MAX_RUNS}", token)
        return ("runs", runs, _pos(token))

    def step_alias(self, meta: Any, children: list[Token]) -> tuple[str, Any, ast.Pos]:
        token = children[0]
        if "." in token:
            raise _fail(f"alias {str(token)!r} must be a single word", token)
        return ("alias", str(token), _pos(token))

    def until_step(self, meta: Any, children: list[Any]) -> "_Until":
        by = children[1] if len(children) > 1 else ()
        return _Until(ast.SequenceStep(children[0], by, 1, None, _pos(meta)))

    def by_list(self, meta: Any, children: list[Any]) -> tuple[ast.Expr, ...]:
        return tuple(children)

    # -- boolean logic --

    def or_expr(self, meta: Any, children: list[Any]) -> ast.Or:
        return ast.Or(tuple(children), _pos(meta))

    def and_expr(self, meta: Any, children: list[Any]) -> ast.And:
        return ast.And(tuple(children), _pos(meta))

    def not_(self, meta: Any, children: list[Any]) -> ast.Not:
        return ast.Not(children[0], _pos(meta))

    def compare(self, meta: Any, children: list[Any]) -> ast.Compare:
        left, (op, case_insensitive, op_pos), right = children
        if isinstance(left, ast.ListExpr):
            raise _fail("a list (a, b, ...) cannot be on the left of a comparison", left.pos)
        if op in ("in", "not in") and not isinstance(right, ast.ListExpr):
            right = ast.ListExpr((right,), _node_pos(right))
        if isinstance(right, ast.ListExpr) and op not in _LIST_OPS:
            raise _fail(f"a list (a, b, ...) cannot follow {op!r}; "
                        "use in, in~, :, like or regex to compare against a list", op_pos)
        return ast.Compare(op, left, right, case_insensitive, op_pos)

    def compare_op(self, meta: Any, children: list[Token]) -> tuple[str, bool, ast.Pos]:
        words = [str(t) for t in children]
        case_insensitive = words[-1].endswith("~")
        op = " ".join(w.rstrip("~") for w in words)
        return op, case_insensitive, _pos(children[0])

    # -- values --

    def arith(self, meta: Any, children: list[Any]) -> ast.Arith:
        left, op, right = children
        return ast.Arith(str(op), left, right, _pos(op))

    def negate(self, meta: Any, children: list[Any]) -> ast.Expr:
        operand = children[-1]
        if isinstance(operand, ast.Literal) and type(operand.value) in (int, float):
            return ast.Literal(-operand.value, _pos(children[0]))  # type: ignore[operator]
        return ast.Negate(operand, _pos(children[0]))

    def tuple(self, meta: Any, children: list[Any]) -> ast.ListExpr:
        return ast.ListExpr(tuple(children), _pos(meta))

    def call(self, meta: Any, children: list[Any]) -> ast.Expr:
        name_token = children[0]
        case_insensitive = len(children) > 1 and isinstance(children[1], Token) and children[1].type == "TILDE"
        args = tuple(children[2:] if case_insensitive else children[1:])
        if case_insensitive:
            _check_adjacent(name_token, children[1])
        name = _function_name(name_token, case_insensitive, len(args))
        if name == "_arraysearch":
            return _array_search(args, _pos(name_token))
        return ast.Call(name, args, case_insensitive, _pos(name_token))

    def lineage(self, meta: Any, children: list[Any]) -> ast.Lineage:
        relation, query = children
        return ast.Lineage(str(relation), query, _pos(relation))

    def field(self, meta: Any, children: list[Token]) -> ast.Field:
        path: list[str] = []
        for part in children:
            if part.type == "BACKTICK_FIELD":
                path.append(str(part)[1:-1].replace("``", "`"))
            else:
                path.extend(str(part).split("."))
        return ast.Field(tuple(path), False, _pos(children[0]))

    def optional_field(self, meta: Any, children: list[ast.Field]) -> ast.Field:
        inner = children[0]
        return ast.Field(inner.path, True, _pos(meta))

    def variable(self, meta: Any, children: list[Token]) -> ast.VarRef:
        token = children[0]
        name, *path = str(token)[1:].split(".")
        return ast.VarRef(name, tuple(path), _pos(token))

    # -- literals --

    def string(self, meta: Any, children: list[Token]) -> ast.Literal:
        token = children[0]
        return ast.Literal(decode_quoted(str(token), token.line, token.column), _pos(token))

    def triple_string(self, meta: Any, children: list[Token]) -> ast.Literal:
        return ast.Literal(str(children[0])[3:-3], _pos(children[0]))

    def raw_string(self, meta: Any, children: list[Token]) -> ast.Literal:
        return ast.Literal(str(children[0])[2:-1], _pos(children[0]))

    def number(self, meta: Any, children: list[Token]) -> ast.Literal:
        token = children[0]
        text = str(token)
        if re.fullmatch(r"\d+", text):
            return ast.Literal(_to_int(text, token), _pos(token))
        return ast.Literal(float(text), _pos(token))

    def true(self, meta: Any, children: list[Any]) -> ast.Literal:
        return ast.Literal(True, _pos(meta))

    def false(self, meta: Any, children: list[Any]) -> ast.Literal:
        return ast.Literal(False, _pos(meta))

    def null(self, meta: Any, children: list[Any]) -> ast.Literal:
        return ast.Literal(None, _pos(meta))


_OPTION_WORDS = MappingProxyType({"by": "by", "runs": "with runs", "alias": "as"})


class _Until:
    """Marks the until bracket among a sequence's children."""

    def __init__(self, step: ast.SequenceStep) -> None:
        self.step = step


def _to_int(text: str, where: Any) -> int:
    try:
        return int(text)
    except ValueError:
        raise _fail("number too large", where) from None


def _check_adjacent(name: Token, tilde: Token) -> None:
    if name.end_pos is not None and tilde.start_pos is not None and name.end_pos != tilde.start_pos:
        raise _fail("write the ~ right after the function name, as in startswith~(...)", tilde)


def _function_name(token: Token, case_insensitive: bool, arg_count: int) -> str:
    raw = str(token)
    if "." in raw:
        raise _fail(f"{raw!r} is a field, not a function; a field cannot be called", token)
    name = ALIASES.get(raw.lower(), raw.lower())
    signature = SIGNATURES.get(name)
    if signature is None:
        known = ", ".join(sorted(SIGNATURES))
        raise _fail(f"unknown function {raw!r}; the dialect has: {known}", token)
    if case_insensitive and not signature.case_insensitive:
        raise _fail(f"function {raw!r} has no case-insensitive (~) form", token)
    if arg_count < signature.min_args or (signature.max_args is not None and arg_count > signature.max_args):
        raise _fail(f"{raw}() takes {_arity(signature.min_args, signature.max_args)}, "
                    f"not {arg_count}", token)
    return name


def _arity(low: int, high: int | None) -> str:
    if high is None:
        return f"at least {low} arguments"
    if low == high:
        return f"{low} argument{'s' if low != 1 else ''}"
    return f"{low} to {high} arguments"


def _array_search(args: tuple[ast.Expr, ...], pos: ast.Pos) -> ast.ArraySearch:
    array, var, condition = args
    if not isinstance(var, ast.VarRef) or var.path:
        raise _fail("the second argument of _arraysearch must be a bare $variable such as $entry",
                    _node_pos(var))
    return ast.ArraySearch(array, var.name, condition, pos)


def _sequence_options(options: list[tuple[str, Any, ast.Pos]]) -> tuple[tuple[ast.Expr, ...], float | None]:
    by: tuple[ast.Expr, ...] = ()
    maxspan: float | None = None
    seen: set[str] = set()
    for kind, value, pos in options:
        if kind in seen:
            raise _fail(f"the sequence's {kind!r} is given twice", pos)
        seen.add(kind)
        if kind == "by":
            by = value
        else:
            maxspan = value
    return by, maxspan


def _expand_runs(steps: list[ast.SequenceStep]) -> list[ast.SequenceStep]:
    """``[q] with runs=3`` is three consecutive brackets ``[q] [q] [q]``."""
    expanded: list[ast.SequenceStep] = []
    for step in steps:
        single = ast.SequenceStep(step.query, step.by, 1, step.alias, step.pos)
        expanded.extend([single] * step.runs)
    return expanded


def _check_join_keys(sequence: ast.Sequence) -> None:
    steps = list(sequence.steps) + ([sequence.until] if sequence.until else [])
    counts = {len(step.by) for step in steps if step.by}
    if len(counts) > 1 or (counts and any(not step.by for step in sequence.steps)):
        raise _fail("every bracket of a sequence needs the same number of 'by' keys", sequence.pos)


def _check_aliases(sequence: ast.Sequence) -> None:
    seen: set[str] = set()
    for step in sequence.steps:
        if step.alias is None:
            continue
        if step.alias in seen:
            raise _fail(f"alias {step.alias!r} is used for two brackets", step.pos)
        seen.add(step.alias)
