"""The functions of the dialect: their signatures (checked when a query is parsed) and their
implementations (called by compiled queries).

Value functions are lifted over multi-valued fields: given an array they return the array of
results, and a comparison on that array then holds if any element does, which is the dialect's
multi-valued rule applied consistently. Predicate functions on an array hold if any element
satisfies them. Any ``null`` argument makes a value function return ``null`` and a predicate
function false.
"""

from __future__ import annotations

from types import MappingProxyType
import ipaddress
import itertools
import re
from dataclasses import dataclass
from typing import Any, Callable

from .strings import wildcard_regex
from .values import as_text, is_number

_MAX_COMBINATIONS = 4096


@dataclass(frozen=True, slots=True)
class Signature:
    """Arity and whether a ``~`` (case-insensitive) form exists."""

    min_args: int
    max_args: int | None
    case_insensitive: bool = False
    predicate: bool = False


SIGNATURES: MappingProxyType[str, Signature] = MappingProxyType({
    "_arraysearch": Signature(3, 3, predicate=True),
    "add": Signature(2, 2),
    "between": Signature(3, 4, case_insensitive=True),
    "cidrmatch": Signature(2, None, predicate=True),
    "concat": Signature(1, None),
    "divide": Signature(2, 2),
    "endswith": Signature(2, 2, case_insensitive=True, predicate=True),
    "indexof": Signature(2, 3, case_insensitive=True),
    "length": Signature(1, 1),
    "modulo": Signature(2, 2),
    "multiply": Signature(2, 2),
    "number": Signature(1, 2),
    "startswith": Signature(2, 2, case_insensitive=True, predicate=True),
    "string": Signature(1, 1),
    "stringcontains": Signature(2, 2, case_insensitive=True, predicate=True),
    "substring": Signature(2, 3),
    "subtract": Signature(2, 2),
    "wildcard": Signature(2, None, case_insensitive=True, predicate=True),
})

# Spellings found in older rules (python-eql's camelCase, arraySearch without underscore).
ALIASES = MappingProxyType({"arraysearch": "_arraysearch"})


def lifted(values: list[Any]) -> list[list[Any]] | None:
    """Every combination of scalar arguments, or None if an argument is null."""
    options: list[list[Any]] = []
    for value in values:
        if value is None:
            return None
        if type(value) is list:
            scalars = [v for v in _flatten(value) if v is not None]
            if not scalars:
                return None
            options.append(scalars)
        else:
            options.append([value])
    return [list(c) for c in itertools.islice(itertools.product(*options), _MAX_COMBINATIONS)]


def _flatten(value: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in value:
        if type(item) is list:
            out.extend(_flatten(item))
        else:
            out.append(item)
    return out


# ---- string predicates ------------------------------------------------------------------

def _fold(text: str, ci: bool) -> str:
    return text.lower() if ci else text


def fn_startswith(args: list[Any], ci: bool) -> bool | None:
    source, prefix = as_text(args[0]), as_text(args[1])
    if source is None or prefix is None:
        return None
    return _fold(source, ci).startswith(_fold(prefix, ci))


def fn_endswith(args: list[Any], ci: bool) -> bool | None:
    source, suffix = as_text(args[0]), as_text(args[1])
    if source is None or suffix is None:
        return None
    return _fold(source, ci).endswith(_fold(suffix, ci))


def fn_stringcontains(args: list[Any], ci: bool) -> bool | None:
    source, sub = as_text(args[0]), as_text(args[1])
    if source is None or sub is None:
        return None
    return _fold(sub, ci) in _fold(source, ci)


def fn_wildcard(args: list[Any], ci: bool) -> bool | None:
    source = as_text(args[0])
    if source is None:
        return None
    flags = re.DOTALL | (re.IGNORECASE if ci else 0)
    for pattern in args[1:]:
        text = as_text(pattern)
        if text is not None and re.fullmatch(wildcard_regex(text), source, flags):
            return True
    return False


def fn_cidrmatch(args: list[Any], ci: bool) -> bool | None:
    try:
        address = ipaddress.ip_address(str(args[0]).strip())
    except ValueError:
        return False
    for cidr in args[1:]:
        try:
            network = ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            continue
        if address.version == network.version and address in network:
            return True
    return False


# ---- string values ----------------------------------------------------------------------

def fn_concat(args: list[Any], ci: bool) -> str | None:
    parts = [as_text(a) for a in args]
    if any(p is None for p in parts):
        return None
    return "".join(parts)  # type: ignore[arg-type]


def fn_substring(args: list[Any], ci: bool) -> str | None:
    source = as_text(args[0])
    if source is None or not all(_is_int(a) for a in args[1:]):
        return None
    end = args[2] if len(args) > 2 else None
    return source[args[1]:end]


def fn_indexof(args: list[Any], ci: bool) -> int | None:
    source, sub = as_text(args[0]), as_text(args[1])
    start = args[2] if len(args) > 2 else 0
    if source is None or sub is None or not _is_int(start):
        return None
    found = _fold(source, ci).find(_fold(sub, ci), max(start, 0))
    return None if found < 0 else found


def fn_between(args: list[Any], ci: bool) -> str | None:
    source, left, right = as_text(args[0]), as_text(args[1]), as_text(args[2])
    greedy = len(args) > 3 and args[3] is True
    if source is None or left is None or right is None:
        return None
    folded = _fold(source, ci)
    start = folded.find(_fold(left, ci))
    if start < 0:
        return ""
    start += len(left)
    finder = folded.rfind if greedy else folded.find
    end = finder(_fold(right, ci), start)
    return "" if end < 0 else source[start:end]


def fn_string(args: list[Any], ci: bool) -> str | None:
    return as_text(args[0])


def fn_number(args: list[Any], ci: bool) -> int | float | None:
    value = args[0]
    if is_number(value):
        return value
    text = as_text(value)
    base = args[1] if len(args) > 1 else None
    if text is None or (base is not None and not _is_int(base)):
        return None
    return _parse_number(text.strip(), base)


def _parse_number(text: str, base: int | None) -> int | float | None:
    try:
        if base is not None:
            return int(text, base)
        if text.lower().startswith(("0x", "-0x")):
            return int(text, 16)
        return int(text)
    except ValueError:
        pass
    try:
        return float(text) if base is None else None
    except ValueError:
        return None


# ---- arithmetic -------------------------------------------------------------------------

def _is_int(value: Any) -> bool:
    return type(value) is int


def arithmetic(op: str, left: Any, right: Any) -> int | float | None:
    """``+ - * / %`` on numbers; integer division truncates like Elastic's; null otherwise."""
    if not (is_number(left) and is_number(right)):
        return None
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if right == 0:
        return None
    if op == "/":
        if _is_int(left) and _is_int(right):
            quotient = abs(left) // abs(right)
            return quotient if (left >= 0) == (right >= 0) else -quotient
        return left / right
    return _java_mod(left, right)


def _java_mod(left: int | float, right: int | float) -> int | float:
    remainder = abs(left) % abs(right)
    return remainder if left >= 0 else -remainder


def _arith_fn(op: str) -> Callable[[list[Any], bool], Any]:
    return lambda args, ci: arithmetic(op, args[0], args[1])


IMPLEMENTATIONS: MappingProxyType[str, Callable[[list[Any], bool], Any]] = MappingProxyType({
    "add": _arith_fn("+"),
    "between": fn_between,
    "cidrmatch": fn_cidrmatch,
    "concat": fn_concat,
    "divide": _arith_fn("/"),
    "endswith": fn_endswith,
    "indexof": fn_indexof,
    "modulo": _arith_fn("%"),
    "multiply": _arith_fn("*"),
    "number": fn_number,
    "startswith": fn_startswith,
    "string": fn_string,
    "stringcontains": fn_stringcontains,
    "substring": fn_substring,
    "subtract": _arith_fn("-"),
    "wildcard": fn_wildcard,
})


def fn_length(value: Any) -> int | None:
    """``length``: characters of a string, elements of an array (not lifted)."""
    if value is None:
        return None
    if type(value) is list:
        return sum(1 for v in _flatten(value) if v is not None)
    if isinstance(value, (str, dict)):
        return len(value)
    return None
