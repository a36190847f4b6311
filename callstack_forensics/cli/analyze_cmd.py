"""``callstack-forensics analyze``: the whole pipeline on one source, findings first.

The findings table is sorted by severity and shows, per finding, the frames that made
the rule fire; the per-process table shows where to look next (unbacked frames, RWX
regions) even when no rule fired.
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
from rich.text import Text

from ..analysis import Analysis, Finding
from ..sources import SourceError
from . import common
from .common import RunOptions

EXAMPLE = """Examples:

  callstack-forensics analyze mem.raw --symbols ./symbols

  callstack-forensics analyze notepad.dmp --json > analysis.json

Exit codes: 0 no findings, 1 findings, 2 usage or input error."""

SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan"}


def register(app: typer.Typer) -> None:
    @app.command("analyze", help=f"Rebuild every stack, build the events and run the rules; print the findings.\n\n{EXAMPLE}")
    def analyze_cmd(
        source: Path = typer.Argument(..., help=common.SOURCE_HELP),
        rules: Optional[list[Path]] = common.rules_option(),
        symbols: Optional[list[Path]] = common.symbols_option(),
        pid: Optional[list[int]] = common.pid_option(),
        as_json: bool = common.json_option(),
        quiet: bool = common.quiet_option(),
        modules: Optional[list[Path]] = common.modules_option(),
        cache_dir: Optional[Path] = common.cache_dir_option(),
        download_symbols: bool = typer.Option(False, "--download-symbols", help="Let Volatility fetch a missing kernel symbol table from Microsoft."),
        max_frames: int = typer.Option(256, "--max-frames", min=1, help="Frames per stack at most."),
        max_stack_bytes: int = typer.Option(1 << 20, "--max-stack-bytes", min=4096, help="Stack bytes read per thread at most."),
        no_yara: bool = typer.Option(False, "--no-yara", help="Do not scan unbacked executable memory with YARA."),
    ) -> None:
        opts = RunOptions(rules=list(rules or []), symbols=list(symbols or []), pids=list(pid or []), as_json=as_json,
                          quiet=quiet, modules_dirs=list(modules or []), cache_dir=cache_dir, download_symbols=download_symbols, max_frames=max_frames,
                          max_stack_bytes=max_stack_bytes, yara=not no_yara)
        console = common.human_console(opts)
        try:
            analysis = common.run_analysis(source, opts, console)
        except SourceError as exc:
            raise common.fail(console, str(exc)) from exc
        if as_json:
            sys.stdout.write(json.dumps(analysis.to_json()) + "\n")
        print_analysis(console, analysis)
        raise typer.Exit(common.EXIT_FINDINGS if analysis.findings else common.EXIT_CLEAN)


def print_analysis(console: Console, analysis: Analysis) -> None:
    console.print(findings_table(analysis))
    console.print(process_table(analysis))
    for note in analysis.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True)
    for error in analysis.rule_errors:
        console.print(f"[yellow]rule not loaded:[/yellow] {escape(error)}")


def findings_table(analysis: Analysis) -> Table:
    title = f"{len(analysis.findings)} findings ({len(analysis.rules)} rules over {len(analysis.events)} events)"
    table = Table(title=title, title_justify="left", show_lines=True)
    for column in ("severity", "rule", "process", "PID", "TID", "frames that matched", "events"):
        table.add_column(column, overflow="fold", no_wrap=column in ("severity", "PID", "TID"))
    for finding in analysis.findings:
        table.add_row(
            Text(finding.severity, style=SEVERITY_STYLE.get(finding.severity.lower(), "")),
            Text(finding.rule_name, style="bold"),
            Text(finding.process or "-"),
            str(finding.pid) if finding.pid is not None else "-",
            str(finding.tid) if finding.tid is not None else "-",
            matched_frames(finding),
            Text(", ".join(finding.event_actions)),
        )
    return table


def matched_frames(finding: Finding) -> Text:
    """The frames that made the rule fire, in red; a rule with no call-stack condition says so."""
    if not finding.frames:
        return Text("(no call-stack condition)", style="dim")
    text = Text()
    for number, frame in enumerate(finding.frames):
        if number:
            text.append("\n")
        owner = "parent " if frame.field.startswith("process.parent.") else ""
        text.append(f"{owner}#{frame.index} ", style="dim")
        text.append(frame.symbol_info, style="bold red")
    return text


def process_table(analysis: Analysis) -> Table:
    hits: dict[int | None, int] = {}
    for finding in analysis.findings:
        hits[finding.pid] = hits.get(finding.pid, 0) + 1
    table = Table(title=f"{len(analysis.processes)} processes, {analysis.threads} threads", title_justify="left")
    for column in ("PID", "PPID", "process", "threads", "unbacked frames", "RWX regions", "findings", "note"):
        table.add_column(column, overflow="fold", no_wrap=column not in ("process", "note"))
    for proc in analysis.processes:
        style = "bold red" if hits.get(proc.info.pid) else ("yellow" if proc.unbacked_frames or proc.rwx_regions else "")
        note = proc.note or ("" if proc.walked else "not walked (context only)")
        table.add_row(str(proc.info.pid), str(proc.info.ppid if proc.info.ppid is not None else "-"), Text(proc.info.name),
                      str(len(proc.stacks)), str(proc.unbacked_frames), str(proc.rwx_regions),
                      str(hits.get(proc.info.pid, 0)), Text(note), style=style)
    return table
