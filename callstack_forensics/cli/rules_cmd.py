"""``callstack-forensics rules check`` and ``callstack-forensics detect``.

``rules check`` parses every rule file and lists the failures with file, line and column;
``detect`` runs rules over an event file alone, no memory image needed.
Exit codes follow the CLI's convention: 0 clean, 1 findings, 2 usage or input error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..analysis.findings import finding_from_match
from ..rules import Match, RuleSet, default_rules_dir, load_rules, rule_folders
from ..rules.eventfile import EventFileError, read_events
from .common import sized
from .tables import findings_view
from ..wording import plural

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
    """Parse every rule; list failures with file, line and column; exit 2 on any failure.

    A rule id met in two files (Elastic ships a rule once per OS folder) is loaded once: each
    such merge is printed as a note, and is no failure."""
    out, err = Console(), Console(stderr=True)
    ruleset = load_rules(_rule_dirs(dirs, err))
    _print_notes(ruleset, err)
    merged = f" ({plural(len(ruleset.notes), 'rule id')} in two files, loaded once)" if ruleset.notes else ""
    if ruleset.errors:
        err.print(_failure_table(ruleset))
        err.print(f"{plural(len(ruleset.errors), 'rule file')} failed, {plural(len(ruleset), 'rule')} parsed{merged}")
        raise typer.Exit(EXIT_USAGE)
    out.print(f"{plural(len(ruleset), 'rule')} parsed, 0 failures{merged}")


def _print_notes(ruleset: RuleSet, err: Console) -> None:
    for note in ruleset.notes:
        err.print(f"note: {escape(note)}", soft_wrap=True, highlight=False)


def detect(
    events: Path = typer.Option(..., "--events", help="Events as ndjson (or a JSON array); - reads them from stdin."),
    rules: Optional[list[Path]] = typer.Option(
        None, "--rules", help="More rule files or folders, added to the shipped rules/; repeatable."
    ),
    no_shipped_rules: bool = typer.Option(
        False, "--no-shipped-rules", help="Leave the shipped rules out: run only the --rules given."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print matches as ndjson on stdout."),
    strict: bool = typer.Option(False, "--strict", help="Exit 2 if any rule file fails to load."),
) -> None:
    """Run rules over an event file; exit 1 when a rule matches, 0 when none does."""
    err = Console(stderr=True)
    ruleset = load_rules(run_folders(rules, no_shipped_rules, err))
    _print_notes(ruleset, err)
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


def run_folders(given: Optional[list[Path]], no_shipped: bool, err: Console) -> list[Path]:
    """``--rules`` adds to the shipped rules, as in every command; ``--no-shipped-rules`` runs
    the given folders alone (and then needs at least one)."""
    if no_shipped:
        if not given:
            err.print("error: --no-shipped-rules needs at least one --rules folder", highlight=False)
            raise typer.Exit(EXIT_USAGE)
        return rule_folders(default_rules_dir(), given, with_shipped=False)
    return rule_folders(_rule_dirs(None, err)[0], given or [])


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
    """The matches as ``analyze`` prints its findings (same columns, frames and event names)."""
    findings = sorted((finding_from_match(m) for m in matches),
                      key=lambda f: (f.severity_rank, f.rule_name, f.pid or 0, f.tid or 0))
    title = f"{plural(rule_count, 'rule')} over {plural(event_count, 'event')}"
    sized(Console()).print(findings_view(findings, title))
