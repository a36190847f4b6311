"""``callstack-forensics rules check`` and ``callstack-forensics detect``.

``rules check`` parses every rule file and lists the failures with file, line and column;
``detect`` runs rules over an event file alone, no memory image needed.
Exit codes follow the CLI's convention: 0 clean, 1 findings, 2 usage or input error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..eql.fields import lookup
from ..rules import Match, RuleSet, default_rules_dir, load_rules
from ..rules.eventfile import EventFileError, read_events

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def register(app: typer.Typer) -> None:
    rules_app = typer.Typer(help="Work with detection rule files.", no_args_is_help=True)
    rules_app.command("check")(check)
    app.add_typer(rules_app, name="rules")
    app.command("detect")(detect)


def check(
    dirs: Optional[list[Path]] = typer.Argument(
        None, help="Rule files or directories (default: the shipped rules/ directory)."
    ),
) -> None:
    """Parse every rule; list failures with file, line and column; exit 2 on any failure."""
    out, err = Console(), Console(stderr=True)
    ruleset = load_rules(_rule_dirs(dirs, err))
    if ruleset.errors:
        err.print(_failure_table(ruleset))
        err.print(f"{len(ruleset.errors)} rule file(s) failed, {len(ruleset)} rule(s) parsed")
        raise typer.Exit(EXIT_USAGE)
    out.print(f"{len(ruleset)} rule(s) parsed, 0 failures")


def detect(
    events: Path = typer.Option(..., "--events", help="Events as ndjson (or a JSON array)."),
    rules: Optional[list[Path]] = typer.Option(
        None, "--rules", help="Rule file or directory; repeatable (default: the shipped rules/)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print matches as ndjson on stdout."),
    strict: bool = typer.Option(False, "--strict", help="Exit 2 if any rule file fails to load."),
) -> None:
    """Run rules over an event file; exit 1 when a rule matches, 0 when none does."""
    err = Console(stderr=True)
    ruleset = load_rules(_rule_dirs(rules, err))
    _report_rule_errors(ruleset, strict, err)
    try:
        loaded = read_events(events)
    except EventFileError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    matches = ruleset.run(loaded)
    if as_json:
        _print_ndjson(matches)
    else:
        _print_matches(matches, len(ruleset), len(loaded))
    raise typer.Exit(EXIT_FINDINGS if matches else EXIT_CLEAN)


def _rule_dirs(given: Optional[list[Path]], err: Console) -> list[Path]:
    if given:
        return list(given)
    default = default_rules_dir()
    if not default.is_dir():
        err.print(f"error: no rules directory given and the default {default} does not exist; "
                  "pass one or more rule directories", highlight=False)
        raise typer.Exit(EXIT_USAGE)
    return [default]


def _failure_table(ruleset: RuleSet) -> Table:
    table = Table(title="Rule files that failed to load")
    for column in ("file", "line", "column", "message"):
        table.add_column(column, overflow="fold")
    for error in ruleset.errors:
        table.add_row(str(error.path), str(error.line), str(error.column), error.message)
    return table


def _report_rule_errors(ruleset: RuleSet, strict: bool, err: Console) -> None:
    if ruleset.errors:
        err.print(_failure_table(ruleset))
    if (strict and ruleset.errors) or not ruleset.rules:
        err.print("error: no rules to run" if not ruleset.rules else "error: some rules failed to load")
        raise typer.Exit(EXIT_USAGE)


def _print_ndjson(matches: list[Match]) -> None:
    for match in matches:
        sys.stdout.write(json.dumps(match.to_json(), default=str) + "\n")
    sys.stdout.flush()


def _print_matches(matches: list[Match], rule_count: int, event_count: int) -> None:
    out = Console()
    if not matches:
        out.print(f"no match ({rule_count} rules over {event_count} events)")
        return
    table = Table(title=f"{len(matches)} match(es): {rule_count} rules over {event_count} events")
    for column in ("rule", "severity", "events", "process", "matched frames"):
        table.add_column(column, overflow="fold")
    for match in matches:
        table.add_row(match.rule.name, match.rule.severity, _describe_events(match.events),
                      _describe_process(match.events[-1]), _describe_frames(match))
    out.print(table)


def _describe_events(events: list[dict[str, Any]]) -> str:
    parts = []
    for event in events:
        category = lookup(event, ("event", "category"))
        action = lookup(event, ("event", "action"))
        category = "/".join(category) if isinstance(category, list) else category
        parts.append(f"{category or '?'}:{action or '?'}")
    return " -> ".join(parts)


def _describe_process(event: dict[str, Any]) -> str:
    name = lookup(event, ("process", "name")) or "?"
    pid = lookup(event, ("process", "pid"))
    return f"{name} ({pid})" if pid is not None else str(name)


def _describe_frames(match: Match) -> str:
    lines = []
    for path, index in match.matched_frames:
        symbol = _frame_symbol(match.events, path, index)
        lines.append(f"{path}[{index}] {symbol}" if symbol else f"{path}[{index}]")
    return "\n".join(lines)


def _frame_symbol(events: list[dict[str, Any]], path: str, index: int) -> str | None:
    if "[" in path:
        return None
    for event in events:
        array = lookup(event, tuple(path.split(".")))
        if isinstance(array, list) and index < len(array) and isinstance(array[index], dict):
            symbol = array[index].get("symbol_info")
            if symbol:
                return str(symbol)
    return None
