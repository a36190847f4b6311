"""Reading rule files: Elastic's endpoint TOML, plus our ``severity`` and ``adaptation`` keys.

A problem in a file becomes a ``RuleLoadError`` with a line and column in that file: TOML errors
carry their own position, and a query's syntax error is shifted from query-relative to the
place where the query text sits inside the file.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Iterable

from ..eql import EqlSyntaxError, compile_query
from .model import DEFAULT_SEVERITY, SEVERITIES, Rule, RuleLoadError

# Sub-directories of a rules directory that hold other material than rule files.
SKIPPED_DIRS = frozenset({"fixtures", "yara"})

_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")
_RULE_TABLE = re.compile(r"^[ \t]*\[rule\][ \t]*(?:#.*)?$", re.MULTILINE)
_QUERY_KEY = re.compile(r"""^[ \t]*query[ \t]*=[ \t]*('''|\"\"\"|'|")""", re.MULTILINE)


def rule_files(paths: Iterable[Path]) -> Iterable[Path]:
    """The ``*.toml`` files under each path (or the path itself), in a stable order."""
    for path in paths:
        if path.is_file():
            yield path
            continue
        for candidate in sorted(path.rglob("*.toml")):
            relative = candidate.relative_to(path).parts[:-1]
            if not any(part in SKIPPED_DIRS or part.startswith(".") for part in relative):
                yield candidate


def load_rule_file(path: Path) -> Rule:
    """Load and compile one rule; raises ``RuleLoadError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleLoadError(path, 1, 1, f"cannot read the file: {exc}") from None
    data = _parse_toml(path, text)
    table = data.get("rule")
    if not isinstance(table, dict):
        raise RuleLoadError(path, 1, 1, "no [rule] table: not an Elastic endpoint rule file")
    rule = _rule_from_table(path, text, data, table)
    rule.compiled = _compile(path, text, rule.query)
    return rule


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_POSITION.search(message)
        line, column = (int(found.group(1)), int(found.group(2))) if found else (1, 1)
        bare = _TOML_POSITION.sub("", message).strip()
        raise RuleLoadError(path, line, column, f"invalid TOML: {bare}") from None


def _rule_from_table(path: Path, text: str, data: dict[str, Any], table: dict[str, Any]) -> Rule:
    rule_line = _line_of(_RULE_TABLE, text)
    for key in ("id", "name", "query"):
        if not isinstance(table.get(key), str) or not table[key].strip():
            raise RuleLoadError(path, rule_line, 1, f"[rule] needs a non-empty text '{key}'")
    severity = table.get("severity", DEFAULT_SEVERITY)
    if severity not in SEVERITIES:
        raise RuleLoadError(path, _key_line(text, "severity", rule_line), 1,
                            f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    adaptation = table.get("adaptation")
    return Rule(
        id=table["id"],
        name=table["name"],
        query=table["query"],
        path=path,
        description=str(table.get("description", "")).strip(),
        severity=severity,
        adaptation=adaptation.strip() if isinstance(adaptation, str) else None,
        version=str(table["version"]) if "version" in table else None,
        os_list=_strings(table.get("os_list")),
        reference=_strings(table.get("reference")),
        raw=data,
    )


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def _compile(path: Path, text: str, query: str) -> Any:
    try:
        return compile_query(query)
    except EqlSyntaxError as exc:
        line, column = query_position(text, exc.line, exc.column)
        raise RuleLoadError(path, line, column, f"query: {exc.message}") from None


def query_position(text: str, line: int, column: int) -> tuple[int, int]:
    """Map a position inside the ``query`` string to a position in the file."""
    rule_table = _RULE_TABLE.search(text)
    found = _QUERY_KEY.search(text, rule_table.end() if rule_table else 0)
    if found is None:
        return line, column
    key_line = text.count("\n", 0, found.start()) + 1
    opener_end = found.end()
    delimiter = found.group(1)
    starts_next_line = len(delimiter) == 3 and text[opener_end:opener_end + 1] == "\n"
    if starts_next_line:
        return key_line + line, column
    if line == 1:
        line_start = text.rfind("\n", 0, opener_end) + 1
        return key_line, opener_end - line_start + column
    return key_line + line - 1, column


def _line_of(pattern: re.Pattern[str], text: str) -> int:
    found = pattern.search(text)
    return text.count("\n", 0, found.start()) + 1 if found else 1


def _key_line(text: str, key: str, default: int) -> int:
    found = re.search(rf"^[ \t]*{re.escape(key)}[ \t]*=", text, re.MULTILINE)
    return text.count("\n", 0, found.start()) + 1 if found else default
