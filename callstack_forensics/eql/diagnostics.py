"""Turning lark's parse failures into messages in the query language's own terms.

A rule author should read ``unexpected '('; expected one of ':', '==', ...`` at a line and column,
not lark's terminal names (``LPAR``, ``RSQB``), and should be told what usually went wrong (an
unterminated string, a missing operator before a list).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Sequence

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import TerminalDef

from .errors import EqlSyntaxError

_TERMINAL_NAMES = MappingProxyType({
    "FIELD": "a field name",
    "BACKTICK_FIELD": "a `quoted` field name",
    "VAR": "a $variable",
    "DURATION": "a duration such as 30s, 1m or 1h",
    "NUMBER": "a number",
    "STRING": "a string",
    "TRIPLE_STRING": 'a """string"""',
    "RAW_STRING": 'a ?"raw string"',
    "SINGLE_STRING": "a string",
    "$END": "end of query",
})


def explain(exc: UnexpectedInput, text: str, terminals: Sequence[TerminalDef]) -> EqlSyntaxError:
    """The syntax error to show for a lark failure on ``text``."""
    if isinstance(exc, UnexpectedCharacters):
        return _bad_character(exc, text)
    if isinstance(exc, UnexpectedToken):
        return _bad_token(exc, text, terminals)
    line, column = getattr(exc, "line", 1), getattr(exc, "column", 1)
    return EqlSyntaxError("unexpected end of query", max(line, 1), max(column, 1))


def _bad_character(exc: UnexpectedCharacters, text: str) -> EqlSyntaxError:
    char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
    rest = text[exc.pos_in_stream:]
    if char in "\"'":
        message = ("unterminated string: a quoted string must end on the same line "
                   '(use """...""" for text that spans lines)')
    elif rest.startswith("/*"):
        message = "unterminated /* comment"
    elif char == "`":
        message = "unterminated `quoted` field name"
    elif char == "!" and rest.startswith("!["):
        message = "missing-event brackets ![...] are not supported"
    else:
        message = f"unexpected character {char!r}"
    return EqlSyntaxError(message, exc.line, exc.column)


def _bad_token(exc: UnexpectedToken, text: str, terminals: Sequence[TerminalDef]) -> EqlSyntaxError:
    token = exc.token
    comment = _unterminated_comment(token, text)
    if comment is not None:
        return comment
    if token.type == "$END":
        line, column = _end_position(text)
        found = "end of query"
    else:
        line, column = token.line or 1, token.column or 1
        found = repr(str(token))
    # LALR lookahead sets are loose: "end of query" shows up inside brackets; only keep it alone
    names = set(exc.expected)
    if len(names) > 1:
        names.discard("$END")
    expected = _expected_names(names, terminals)
    message = f"unexpected {found}"
    if expected:
        message += "; expected " + expected
    hint = _hint(token, text)
    if hint:
        message += f" ({hint})"
    return EqlSyntaxError(message, line, column)


def _unterminated_comment(token: Token, text: str) -> EqlSyntaxError | None:
    """``/*`` without ``*/`` lexes as a division and a star; say what it really is."""
    start = token.start_pos
    if start is None or token.type not in ("SLASH", "STAR"):
        return None
    opener = start if text.startswith("/*", start) else start - 1
    if opener < 0 or not text.startswith("/*", opener):
        return None
    line = text.count("\n", 0, opener) + 1
    column = opener - (text.rfind("\n", 0, opener) + 1) + 1
    return EqlSyntaxError("unterminated /* comment", line, column)


def _expected_names(names: set[str], definitions: Sequence[TerminalDef]) -> str:
    terminals = {t.name: t for t in definitions}
    described: set[str] = set()
    literal: set[str] = set()
    for name in names:
        if name in _TERMINAL_NAMES:
            described.add(_TERMINAL_NAMES[name])
        elif name in terminals and terminals[name].pattern.type == "str":
            literal.add(repr(terminals[name].pattern.value))
    ordered = sorted(described) + sorted(literal)
    if len(ordered) > 10:
        ordered = ordered[:10] + ["..."]
    return " or ".join(ordered) if len(ordered) <= 2 else "one of " + ", ".join(ordered)


def _hint(token: Token, text: str) -> str | None:
    if token.type == "LPAR" and token.start_pos is not None:
        before = text[: token.start_pos].rstrip()
        if before and (before[-1].isalnum() or before[-1] in "_@"):
            return "is an operator such as ':' missing before the list?"
    return None


def _end_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1
