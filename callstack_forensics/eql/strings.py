r"""String literals and wildcard patterns.

Literal decoding follows Elastic's EQL: double-quoted strings take backslash escapes, triple
quotes and ``?"..."`` are raw. Unknown escapes are errors rather than silently kept, because a
Windows path written with single backslashes (``"C:\\Windows"`` typed as ``"C:\Windows"``) is the
most common rule-writing mistake and would otherwise match nothing without a word.
"""

from __future__ import annotations

from types import MappingProxyType
import re

from .errors import EqlSyntaxError

_SIMPLE_ESCAPES = MappingProxyType({"\\": "\\", '"': '"', "'": "'", "n": "\n", "r": "\r", "t": "\t", "0": "\0"})
_UNICODE_ESCAPE = re.compile(r"u\{([0-9A-Fa-f]{1,8})\}|u([0-9A-Fa-f]{4})")


def decode_quoted(token: str, line: int, column: int) -> str:
    """Decode a ``"..."`` or ``'...'`` literal (quotes included) with its escapes."""
    body = token[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[nxt])
            i += 2
            continue
        unicode = _UNICODE_ESCAPE.match(body, i + 1)
        if unicode:
            out.append(_code_point(unicode.group(1) or unicode.group(2), line, column + i + 1))
            i = unicode.end()
            continue
        raise EqlSyntaxError(
            f"unknown escape sequence '\\{nxt}' in a string; write '\\\\' for a backslash "
            "(Windows paths need doubled backslashes) or use a \"\"\"raw\"\"\" string",
            line,
            column + i + 1,
        )
    return "".join(out)


def _code_point(digits: str, line: int, column: int) -> str:
    value = int(digits, 16)
    if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
        raise EqlSyntaxError(f"invalid unicode escape \\u{{{digits}}}", line, column)
    return chr(value)


def wildcard_regex(pattern: str) -> str:
    """The regex source for an EQL wildcard: ``*`` any run, ``?`` exactly one character."""
    parts: list[str] = []
    for ch in pattern:
        if ch == "*":
            if not parts or parts[-1] != ".*":
                parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return "".join(parts)


def has_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern
