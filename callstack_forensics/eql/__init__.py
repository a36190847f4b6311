"""An engine for Elastic's endpoint EQL dialect: parse, compile once, run over ECS events.

``parse_query`` gives a typed syntax tree, ``compile_query`` turns it into Python closures, and
``CompiledQuery.run`` (or ``runner.run_queries`` for many queries at once) evaluates event
queries, sequences and lineage over an event set. Every parse or compile problem is an
``EqlSyntaxError`` with a line and column.
"""

from .errors import EqlSyntaxError
from .parser import parse_query
from .query import CompiledQuery, compile_query
from .runner import run_queries
from .sequence import QueryMatch

__all__ = [
    "CompiledQuery",
    "EqlSyntaxError",
    "QueryMatch",
    "compile_query",
    "parse_query",
    "run_queries",
]
