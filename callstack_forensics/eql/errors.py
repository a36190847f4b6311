"""The one error type the EQL front end raises, with a position a rule author can act on."""

from __future__ import annotations


class EqlSyntaxError(ValueError):
    """A query that cannot be parsed or compiled.

    ``line`` and ``column`` are 1-based and relative to the query text, so a rule loader can shift
    them to the position of the query inside its file. ``message`` is the bare explanation;
    ``str()`` adds the position.
    """

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.message = message
        self.line = line
        self.column = column
