"""Reading an event file: newline-delimited JSON (one event per line) or a JSON array."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO


class EventFileError(ValueError):
    """An unreadable event file, or a line in it that is not a JSON object."""

    def __init__(self, path: Path, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
        self.message = message


def read_events(path: Path, stdin: TextIO | None = None) -> list[dict[str, Any]]:
    """The events of ``path`` (of ``stdin`` when ``path`` is ``-``, so ``events SOURCE | detect --events -``
    works); raises ``EventFileError`` naming the bad line."""
    try:
        text = (stdin or sys.stdin).read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EventFileError(path, None, f"cannot read the file: {exc}") from None
    if text.lstrip().startswith("["):
        return _json_array(path, text)
    return _ndjson(path, text)


def _ndjson(path: Path, text: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EventFileError(path, number, f"not valid JSON ({exc.msg}, column {exc.colno})") from None
        if not isinstance(event, dict):
            raise EventFileError(path, number, f"an event must be a JSON object, not {type(event).__name__}")
        events.append(event)
    return events


def _json_array(path: Path, text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventFileError(path, exc.lineno, f"not valid JSON ({exc.msg}, column {exc.colno})") from None
    if not isinstance(data, list):
        raise EventFileError(path, 1, "expected a JSON array of events")
    for position, event in enumerate(data):
        if not isinstance(event, dict):
            raise EventFileError(path, None, f"element {position} of the array is not a JSON object")
    return data
