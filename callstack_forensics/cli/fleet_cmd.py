"""``callstack-forensics fleet``: many sources on a Dask cluster into one case store, and SQL over it.

``fleet SOURCES... -o CASE_DIR`` is the run (``fleet run`` spelled out); ``fleet query``, ``fleet
rare``, ``fleet report`` and ``fleet export`` read a case folder, also while a run is filling it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from . import common
from .common import RunOptions
from ..wording import plural

RUN_EXAMPLE = """Examples:

  callstack-forensics fleet /cases/acme/*.raw /cases/acme/dumps -o acme-case --symbols ./symbols

  callstack-forensics fleet /share/captures -o acme-case --scheduler tcp://10.0.0.5:8786

Runs the same command again to resume: sources already in the case store are skipped.
Then: fleet rare acme-case, fleet query acme-case "SELECT ...", acme-case/fleet.html.

Exit codes: 0 no findings, 1 findings, 2 usage or input error (or no source could be analysed)."""

QUERY_EXAMPLE = """Tables: sources, processes, threads, frames, events, findings (with stack_hosts,
stack_threads, process_stack_hosts, fleet_hosts), stack_prevalence, process_stack_prevalence.

Example:

  callstack-forensics fleet query acme-case "SELECT stack_shape, hosts FROM stack_prevalence ORDER BY hosts LIMIT 5\""""


class FleetGroup(typer.core.TyperGroup):
    """``fleet SOURCES...`` runs ``fleet run SOURCES...``: the run is the command people type most."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def register(app: typer.Typer) -> None:
    fleet = typer.Typer(cls=FleetGroup, no_args_is_help=True, rich_markup_mode=None,
                        help="Analyse many images and minidumps on a Dask cluster into one case store; "
                        "query it (prevalence of each stack across hosts).")
    fleet.command("run", help=f"Analyse SOURCES (files, folders, globs) into CASE_DIR, one Dask task per source.\n\n{RUN_EXAMPLE}")(run_cmd)
    fleet.command("query", help=f"Run SQL (DuckDB) over a case store; rows as a table, or --json.\n\n{QUERY_EXAMPLE}")(query_cmd)
    fleet.command("rare", help="The stacks seen on the fewest hosts, rarest first; unbacked and RWX frames marked.")(rare_cmd)
    fleet.command("report", help="Write the fleet HTML report of a case store (default CASE_DIR/fleet.html).")(report_cmd)
    fleet.command("export", help="Write every event of a case store as ECS ndjson (host.name and labels.source_sha256 added).")(export_cmd)
    app.add_typer(fleet, name="fleet")


def run_cmd(
    sources: list[str] = typer.Argument(..., help="Memory images and minidumps: files, folders (searched for captures) or globs."),
    case_dir: Path = typer.Option(..., "--output", "-o", help="The case folder: the Parquet store, the reports."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="An existing Dask scheduler, tcp://HOST:PORT (default: a local cluster, one worker per core)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Workers of the local cluster (default: one per usable core)."),
    timeout: float = typer.Option(3600.0, "--timeout", min=0, help="Seconds one source may take before it is recorded as failed (0: no limit)."),
    no_reports: bool = typer.Option(False, "--no-reports", help="Do not write each source's HTML case report."),
    rules: Optional[list[Path]] = common.rules_option(),
    symbols: Optional[list[Path]] = common.symbols_option(),
    modules: Optional[list[Path]] = common.modules_option(),
    cache_dir: Optional[Path] = common.cache_dir_option(),
    download_symbols: bool = typer.Option(False, "--download-symbols", help="Let Volatility fetch a missing kernel symbol table from Microsoft."),
    max_frames: int = typer.Option(256, "--max-frames", min=1, help="Frames per stack at most."),
    max_stack_bytes: int = typer.Option(1 << 20, "--max-stack-bytes", min=4096, help="Stack bytes read per thread at most."),
    no_yara: bool = typer.Option(False, "--no-yara", help="Do not scan unbacked executable memory with YARA."),
    as_json: bool = typer.Option(False, "--json", help="Print the run's summary as JSON on stdout; the human output goes to stderr."),
    quiet: bool = common.quiet_option(),
) -> None:
    from .fleet_run import run_case

    opts = RunOptions(rules=list(rules or []), symbols=[p.resolve() for p in symbols or []],
                      modules_dirs=[p.resolve() for p in modules or []], cache_dir=cache_dir.resolve() if cache_dir else None,
                      download_symbols=download_symbols, max_frames=max_frames, max_stack_bytes=max_stack_bytes,
                      yara=not no_yara, quiet=quiet, as_json=as_json)
    opts.rules = [p.resolve() for p in opts.rules]
    console = common.human_console(opts)
    try:
        summary = run_case(sources, case_dir, opts, scheduler, workers, timeout or None, not no_reports, console)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted:[/yellow] what finished is in the case store; run the same command again "
                      "to resume", soft_wrap=True)
        raise typer.Exit(130)
    except run_errors() as exc:
        raise common.fail(console, str(exc)) from exc
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    if not summary["analysed"] and not summary["already"]:
        raise typer.Exit(common.EXIT_USAGE)
    raise typer.Exit(common.EXIT_FINDINGS if summary["findings"] else common.EXIT_CLEAN)


def run_errors() -> tuple[type[Exception], ...]:
    from ..fleet.errors import FLEET_ERRORS
    from ..sources import SourceError

    return (*FLEET_ERRORS, SourceError)


def query_cmd(
    case_dir: Path = typer.Argument(..., help="A case folder written by fleet."),
    sql: str = typer.Argument(..., help="The SQL (DuckDB dialect)."),
    as_json: bool = typer.Option(False, "--json", help="Rows as a JSON list of objects on stdout."),
) -> None:
    from ..fleet.prevalence import query

    console = common.sized(Console(stderr=True))
    con = _open(case_dir, console)
    try:
        result = query(con, sql)
    except run_errors() as exc:
        raise common.fail(console, str(exc)) from exc
    if as_json:
        rows = [dict(zip(result.columns, row)) for row in result.rows]
        sys.stdout.write(json.dumps(rows, default=str) + "\n")
        return
    table = Table(title=plural(len(result.rows), "row"), title_justify="left", box=None, header_style="bold")
    for column in result.columns:
        table.add_column(column, overflow="fold")
    for row in result.rows:
        table.add_row(*(Text(_cell(v)) for v in row))
    common.sized(Console()).print(table)


def rare_cmd(
    case_dir: Path = typer.Argument(..., help="A case folder written by fleet."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many stacks to list."),
    process: Optional[str] = typer.Option(None, "--process", help="Only stacks of threads of this process name (e.g. svchost.exe)."),
    as_json: bool = typer.Option(False, "--json", help="The stacks as JSON on stdout."),
) -> None:
    from ..fleet.prevalence import fleet_hosts, rare_stacks

    console = common.sized(Console(stderr=True))
    con = _open(case_dir, console)
    stacks, hosts = rare_stacks(con, limit, process), fleet_hosts(con)
    if as_json:
        sys.stdout.write(json.dumps([{"stack_id": s.stack_id, "hosts": s.hosts, "fleet_hosts": hosts, "sources": s.sources,
                                      "threads": s.threads, "processes": s.processes, "unbacked": s.unbacked, "rwx": s.rwx,
                                      "frames": [vars_of(f) for f in s.frames]} for s in stacks]) + "\n")
        return
    out = common.sized(Console())
    out.print(f"{plural(len(stacks), 'stack')} seen on the fewest of {plural(hosts, 'host')}, rarest first"
              + (f" (process {escape(process)})" if process else ""), highlight=False)
    for stack in stacks:
        out.print(rare_block(stack, hosts), highlight=False, soft_wrap=True)


def vars_of(frame: Any) -> dict[str, Any]:
    return {"label": frame.label, "unbacked": frame.unbacked, "rwx": frame.rwx}


def rare_block(stack: Any, hosts: int) -> Text:
    """``1 of 5 hosts, 4 threads: notepad.exe`` then the frames, one a line, marks after them."""
    text = Text()
    text.append(f"\n{stack.hosts} of {plural(hosts, 'host')}", style="bold red" if stack.hosts == 1 and hosts > 1 else "bold")
    text.append(f", {plural(stack.threads, 'thread')}: {', '.join(stack.processes)}  [{stack.stack_id}]\n")
    for index, frame in enumerate(stack.frames):
        text.append(f"  {index:>2} {frame.label}")
        if frame.unbacked:
            text.append("  UNBACKED", style="bold red")
        if frame.rwx:
            text.append("  RWX", style="bold yellow")
        text.append("\n")
    text.rstrip()
    return text


def report_cmd(
    case_dir: Path = typer.Argument(..., help="A case folder written by fleet."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="The HTML file (default CASE_DIR/fleet.html)."),
) -> None:
    from ..fleet.report import write_fleet_report

    console = common.sized(Console(stderr=True))
    con = _open(case_dir, console)
    target = output or case_dir / "fleet.html"
    if not target.parent.is_dir():
        raise common.fail(console, f"--output {target}: folder {target.parent} does not exist")
    try:
        write_fleet_report(case_dir, con, target)
    except OSError as exc:
        raise common.fail(console, f"--output {target}: cannot write ({exc.strerror or exc})") from exc
    console.print(f"fleet report: {escape(str(target.resolve()))}", soft_wrap=True)


def export_cmd(
    case_dir: Path = typer.Argument(..., help="A case folder written by fleet."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="The ndjson file; stdout when omitted or '-'."),
) -> None:
    from ..fleet.export import export_events

    console = common.sized(Console(stderr=True))
    con = _open(case_dir, console)
    if output is None or str(output) == "-":
        export_events(con, sys.stdout)
        return
    if not output.parent.is_dir():
        raise common.fail(console, f"--output {output}: folder {output.parent} does not exist")
    with output.open("w", encoding="utf-8") as stream:
        count = export_events(con, stream)
    console.print(f"{plural(count, 'event')} written to {escape(str(output))}", soft_wrap=True)


def _open(case_dir: Path, console: Console) -> Any:
    from ..fleet.prevalence import open_store
    from ..fleet.store import CaseStore

    store = CaseStore(case_dir)
    if not store.exists():
        raise common.fail(console, f"{case_dir}: not a fleet case folder (no {case_dir / 'store'}); "
                                   "make one with: callstack-forensics fleet SOURCES... -o CASE_DIR")
    return open_store(store)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)
