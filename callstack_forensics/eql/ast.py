"""The typed syntax tree of a query.

Nodes are frozen dataclasses so that equal sub-queries compare and hash equal: the runner uses
that to evaluate a lineage sub-query (``descendant of [...]``) once, however many rules share it.
Positions are carried for error messages but excluded from equality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True, slots=True)
class Pos:
    line: int = 1
    column: int = 1


_NOWHERE = Pos()


def _pos() -> Pos:
    return field(default=_NOWHERE, compare=False, repr=False)  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Literal:
    """A string, number, boolean or ``null`` (``None``)."""

    value: str | int | float | bool | None
    pos: Pos = _pos()


@dataclass(frozen=True, slots=True)
class Field:
    """A field of the event; ``path`` is the dotted name split in segments."""

    path: tuple[str, ...]
    optional: bool = False
    pos: Pos = _pos()

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class VarRef:
    """``$name`` or ``$name.some.field``: an element bound by ``_arraysearch``."""

    name: str
    path: tuple[str, ...] = ()
    pos: Pos = _pos()


@dataclass(frozen=True, slots=True)
class ListExpr:
    """A parenthesised list, only valid on the right of ``in``, ``:``, ``like``, ``regex``."""

    items: tuple["Expr", ...]
    pos: Pos = _pos()


@dataclass(frozen=True, slots=True)
class Compare:
    """``left op right``; ``op`` is one of ``== != < <= > >= : in not in like regex``."""

    op: str
    left: "Expr"
    right: "Expr"
    case_insensitive: bool = False
    pos: Pos = _pos()


@dataclass(frozen=True, slots=True)
class Not:
    operand: "Expr"
    pos: Pos = _pos()


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple["Expr", ...]
    pos: Pos = _pos()


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple["Expr", ...]
    pos: Pos = _pos()


@dataclass(frozen=True, slots=True)
class Arith:
    """``+ - * / %`` on numbers."""

    op: str
    left: "Expr"
    right: "Expr"
    pos: Pos = _pos()


@dataclass(frozen=True, slots=True)
class Negate:
    operand: "Expr"
    pos: Pos = _pos()


@dataclass(frozen=True, slots=True)
class Call:
    """A function call; ``name`` is lower-case, ``case_insensitive`` is the ``~`` suffix."""

    name: str
    args: tuple["Expr", ...]
    case_insensitive: bool = False
    pos: Pos = _pos()


@dataclass(frozen=True, slots=True)
class ArraySearch:
    """``_arraysearch(array, $var, condition)``: true when some element satisfies condition."""

    array: "Expr"
    var: str
    condition: "Expr"
    pos: Pos = _pos()


@dataclass(frozen=True, slots=True)
class Lineage:
    """``descendant of [q]``, ``child of [q]`` or ``event of [q]`` over the process tree."""

    relation: str
    query: "EventQuery"
    pos: Pos = _pos()


Expr = Union[Literal, Field, VarRef, ListExpr, Compare, Not, And, Or, Arith, Negate, Call,
             ArraySearch, Lineage]


@dataclass(frozen=True, slots=True)
class EventQuery:
    """``category where condition``; category ``any`` matches every event."""

    category: str
    condition: Expr
    pos: Pos = _pos()


@dataclass(frozen=True, slots=True)
class SequenceStep:
    """One bracket of a sequence, with its own ``by`` keys, ``runs`` count and alias."""

    query: EventQuery
    by: tuple[Expr, ...] = ()
    runs: int = 1
    alias: str | None = None
    pos: Pos = _pos()


@dataclass(frozen=True, slots=True)
class Sequence:
    """``sequence [by k] [with maxspan=d] [q1] [q2] ... [until [q]]``."""

    steps: tuple[SequenceStep, ...]
    by: tuple[Expr, ...] = ()
    maxspan_ms: float | None = None
    until: SequenceStep | None = None
    pos: Pos = _pos()


Query = Union[EventQuery, Sequence]
