"""``callstack-forensics report``: the whole analysis written as one self-contained HTML case report.

The report is what goes into the case file and to the person who did not run the tool, so
the command checks where it will write before spending minutes on an image, writes through
a temporary file so an interrupted run leaves no half report behind, and says what it wrote.
Running it again replaces an earlier report of ours (and says so), but it never overwrites
any other file without ``--force``: ``-o mem.raw`` by mistake must not destroy the evidence,
and the source itself is never overwritten.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Optional

import typer

from ..report import render_report
from ..sources import SourceError
from . import common
from .common import RunOptions
from ..wording import plural

EXAMPLE = """Examples:

  callstack-forensics report mem.raw --symbols ./symbols -o case.html

  callstack-forensics report notepad.dmp -o notepad-case.html --json

Open the file in any browser; it fetches nothing. An earlier report at the same path is
replaced; any other existing file needs --force.

Exit codes: 0 no findings, 1 findings, 2 usage or input error."""

GENERATOR_MARK = b'<meta name="generator" content="callstack-forensics'
HEAD_BYTES = 4096


def register(app: typer.Typer) -> None:
    @app.command("report", help=f"Analyse a source and write the HTML case report (findings, process tree, every stack).\n\n{EXAMPLE}")
    def report_cmd(
        source: Path = typer.Argument(..., help=common.SOURCE_HELP),
        output: Path = typer.Option(Path("case.html"), "--output", "-o", help="The HTML file to write."),
        force: bool = typer.Option(False, "--force", help="Replace the output file even if it is not an earlier case report."),
        rules: Optional[list[Path]] = common.rules_option(),
        no_shipped_rules: bool = common.no_shipped_rules_option(),
        symbols: Optional[list[Path]] = common.symbols_option(),
        pid: Optional[list[int]] = common.pid_option(),
        as_json: bool = typer.Option(False, "--json", help='Print {"report": PATH, "findings": N} on stdout; the human output goes to stderr.'),
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
                          quiet=quiet, modules_dirs=list(modules or []), files_dirs=list(files or []), cache_dir=cache_dir,
                          download_symbols=download_symbols, max_frames=max_frames, max_stack_bytes=max_stack_bytes, yara=not no_yara)
        console = common.human_console(opts)
        problem = output_problem(output, source, force)
        if problem:
            raise common.fail(console, problem)
        try:
            analysis = common.run_analysis(source, opts, console)
        except SourceError as exc:
            raise common.fail(console, str(exc)) from exc
        replaced = output.exists()
        try:
            write_atomically(output, render_report(analysis))
        except OSError as exc:
            raise common.fail(console, f"--output {output}: cannot write ({exc.strerror or exc})") from exc
        where = output.resolve()
        if as_json:
            sys.stdout.write(json.dumps({"report": str(where), "findings": len(analysis.findings)}) + "\n")
        console.print(f"case report: {common.escape(str(where))} ({'replaced the earlier one; ' if replaced else ''}"
                      f"{plural(len(analysis.findings), 'finding')}, {plural(len(analysis.processes), 'process')}, "
                      f"{plural(analysis.threads, 'thread')}, {plural(len(analysis.notes), 'note')})",
                      soft_wrap=True)
        raise typer.Exit(common.EXIT_FINDINGS if analysis.findings else common.EXIT_CLEAN)


def output_problem(output: Path, source: Path, force: bool) -> str | None:
    """Why ``output`` cannot be written, checked before the analysis; None when it can."""
    folder = output.parent
    if not folder.is_dir():
        return f"--output {output}: folder {folder} does not exist"
    if output.is_dir():
        return f"--output {output}: is a folder; give a file name such as {output / 'case.html'}"
    if output.exists() and source.exists() and output.resolve() == source.resolve():
        return f"--output {output}: is the source being analysed"
    if output.exists() and not force and not is_case_report(output):
        return f"--output {output}: exists and is not a case report; give another name or --force to replace it"
    if not os.access(folder, os.W_OK):
        return f"--output {output}: folder {folder} is not writable"
    return None


def is_case_report(path: Path) -> bool:
    """A file this command wrote (its generator tag sits in the first lines of the head)."""
    try:
        with path.open("rb") as stream:
            return GENERATOR_MARK in stream.read(HEAD_BYTES)
    except OSError:
        return False


def write_atomically(output: Path, text: str) -> None:
    """Write beside the target and rename: a reader never sees half a report."""
    handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide the report from the rest of the team
        os.replace(temporary, output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
