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

from ..analysis import Analysis
from ..sources import SourceError
from . import common
from .common import RunOptions
from .tables import print_tables

EXAMPLE = """Examples:

  callstack-forensics analyze mem.raw --symbols ./symbols

  callstack-forensics analyze notepad.dmp --json > analysis.json

Exit codes: 0 no findings, 1 findings, 2 usage or input error."""

def register(app: typer.Typer) -> None:
    @app.command("analyze", help=f"Rebuild every stack, build the events and run the rules; print the findings.\n\n{EXAMPLE}")
    def analyze_cmd(
        source: Path = typer.Argument(..., help=common.SOURCE_HELP),
        rules: Optional[list[Path]] = common.rules_option(),
        no_shipped_rules: bool = common.no_shipped_rules_option(),
        symbols: Optional[list[Path]] = common.symbols_option(),
        pid: Optional[list[int]] = common.pid_option(),
        as_json: bool = common.json_option(),
        quiet: bool = common.quiet_option(),
        modules: Optional[list[Path]] = common.modules_option(),
        files: Optional[list[Path]] = common.files_option(),
        cache_dir: Optional[Path] = common.cache_dir_option(),
        download_symbols: bool = typer.Option(False, "--download-symbols", help="Let Volatility fetch a missing kernel symbol table from Microsoft."),
        max_frames: int = typer.Option(256, "--max-frames", min=1, help="Frames per stack at most."),
        max_stack_bytes: int = typer.Option(1 << 20, "--max-stack-bytes", min=4096, help="Stack bytes read per thread at most."),
        no_yara: bool = typer.Option(False, "--no-yara", help="Do not scan unbacked executable memory with YARA."),
    ) -> None:
        opts = RunOptions(rules=list(rules or []), no_shipped_rules=no_shipped_rules, symbols=list(symbols or []), pids=list(pid or []), as_json=as_json,
                          quiet=quiet, modules_dirs=list(modules or []), files_dirs=list(files or []), cache_dir=cache_dir, download_symbols=download_symbols, max_frames=max_frames,
                          max_stack_bytes=max_stack_bytes, yara=not no_yara)
        console = common.human_console(opts)
        try:
            analysis = common.run_analysis(source, opts, console)
        except SourceError as exc:
            raise common.fail(console, str(exc)) from exc
        if as_json:
            sys.stdout.write(json.dumps(analysis.to_json()) + "\n")
        print_analysis(common.table_console(opts), analysis)
        raise typer.Exit(common.EXIT_FINDINGS if analysis.findings else common.EXIT_CLEAN)


def print_analysis(console: Console, analysis: Analysis) -> None:
    """The tables, then what could not be read and which rules did not load."""
    print_tables(console, analysis)
    for note in analysis.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    for error in analysis.rule_errors:
        console.print(f"[yellow]rule not loaded:[/yellow] {escape(error)}")
