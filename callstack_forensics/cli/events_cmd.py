"""``callstack-forensics events``: the synthetic ECS events of a source, as ndjson.

One event per line, ready for Elastic's bulk ingest or for ``callstack-forensics detect
--events`` (run other rules later without reading the image again).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from ..sources import SourceError
from . import common
from .common import RunOptions
from ..wording import plural

EXAMPLE = """Examples:

  callstack-forensics events mem.raw --symbols ./symbols -o events.ndjson

  callstack-forensics events notepad.dmp | jq -c 'select(.event.category[0]=="library")'"""


def register(app: typer.Typer) -> None:
    @app.command("events", help=f"Write the synthetic ECS events (process, library, file, registry, API, thread) as ndjson.\n\n{EXAMPLE}")
    def events_cmd(
        source: Path = typer.Argument(..., help=common.SOURCE_HELP),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="The ndjson file to write; stdout when omitted or '-'."),
        symbols: Optional[list[Path]] = common.symbols_option(),
        pid: Optional[list[int]] = typer.Option(None, "--pid", help="Only the events of these process ids (repeatable)."),
        with_ancestors: bool = typer.Option(False, "--with-ancestors", help="With --pid, also the events of their ancestors (what lineage rules need)."),
        quiet: bool = common.quiet_option(),
        modules: Optional[list[Path]] = common.modules_option(),
        files: Optional[list[Path]] = common.files_option(),
        cache_dir: Optional[Path] = common.cache_dir_option(),
        download_symbols: bool = typer.Option(False, "--download-symbols", help="Let Volatility fetch a missing kernel symbol table from Microsoft."),
        max_frames: int = typer.Option(256, "--max-frames", min=1, help="Frames per stack at most."),
        max_stack_bytes: int = typer.Option(1 << 20, "--max-stack-bytes", min=4096, help="Stack bytes read per thread at most."),
        no_yara: bool = typer.Option(False, "--no-yara", help="Do not scan unbacked executable memory with YARA."),
    ) -> None:
        opts = RunOptions(symbols=list(symbols or []), pids=list(pid or []), quiet=quiet, modules_dirs=list(modules or []), files_dirs=list(files or []), cache_dir=cache_dir,
                          download_symbols=download_symbols, max_frames=max_frames, max_stack_bytes=max_stack_bytes, yara=not no_yara, hash_source=False)
        console = common.human_console(opts)
        to_stdout = output is None or str(output) == "-"
        if not to_stdout and not output.parent.is_dir():
            raise common.fail(console, f"--output {output}: folder {output.parent} does not exist")
        try:
            analysis = common.run_analysis(source, opts, console, with_rules=False, emit_ancestors=with_ancestors)
        except SourceError as exc:
            raise common.fail(console, str(exc)) from exc
        lines = "".join(json.dumps(event, sort_keys=True) + "\n" for event in analysis.events)
        if to_stdout:
            sys.stdout.write(lines)
        else:
            output.write_text(lines, encoding="utf-8")
            console.print(f"{plural(len(analysis.events), 'event')} written to {output}", soft_wrap=True)
        for note in analysis.notes:
            console.print(f"[yellow]note:[/yellow] {common.escape(note)}", soft_wrap=True)
