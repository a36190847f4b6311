"""``callstack-forensics stacks``: every thread's rebuilt frames, as rich tables or JSON lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ..context import ProcessContext, WalkOptions
from ..modules import ImageCache
from ..sources import SourceError, open_processes
from ..stack import ThreadStack
from ..walker import walk_thread

EXAMPLE = "Example: callstack-forensics stacks notepad.dmp --tid 1234 --bytes"


def register(app: typer.Typer) -> None:
    @app.command("stacks", help=f"Print every thread's rebuilt user-mode call stack.\n\n{EXAMPLE}")
    def stacks(
        source: Path = typer.Argument(..., help="A user-mode minidump (.dmp)."),
        pid: Optional[list[int]] = typer.Option(None, "--pid", help="Only these process ids (repeatable)."),
        tid: Optional[list[int]] = typer.Option(None, "--tid", help="Only these thread ids (repeatable)."),
        as_json: bool = typer.Option(False, "--json", help="One JSON object per thread on stdout."),
        show_bytes: bool = typer.Option(False, "--bytes", help="Show the call-site bytes in the table."),
        max_frames: int = typer.Option(256, "--max-frames", min=1, help="Frames per stack at most."),
        max_stack_bytes: int = typer.Option(1 << 20, "--max-stack-bytes", min=4096, help="Stack bytes one thread's scan may read."),
    ) -> None:
        err = Console(stderr=True)
        options = WalkOptions(max_frames=max_frames, max_stack_bytes=max_stack_bytes)
        try:
            for result in iter_stacks(source, options, set(pid or ()), set(tid or ())):
                if as_json:
                    sys.stdout.write(json.dumps(result.to_json()) + "\n")
                else:
                    Console().print(stack_table(result, show_bytes))
        except SourceError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc


def iter_stacks(source: Path, options: WalkOptions, pids: set[int], tids: set[int]):
    images = ImageCache()
    for memory in open_processes(source):
        if pids and memory.process.pid not in pids:
            continue
        ctx = ProcessContext(memory, options, images)
        for thread in memory.threads():
            if tids and thread.tid not in tids:
                continue
            yield walk_thread(ctx, thread)


def stack_table(stack: ThreadStack, show_bytes: bool = False) -> Table:
    title = f"PID {stack.pid} {stack.process_name}  TID {stack.tid}"
    caption = f"stop: {stack.stop_reason.value if stack.stop_reason else '-'}"
    if stack.note:
        caption += f"  note: {stack.note}"
    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for col in ("#", "address", "symbol_info", "region", "prot", "found", "call"):
        if col == "symbol_info":
            table.add_column(col, overflow="fold", ratio=1)  # long paths wrap, never truncate
        else:
            table.add_column(col, no_wrap=True)
    if show_bytes:
        table.add_column("callsite_leading_bytes (last 16)")
    for frame in stack.frames:
        style = "bold red" if frame.unbacked else ("yellow" if frame.protection.startswith("RWX") else "")
        verified = "-" if frame.call_verified is None else ("yes" if frame.call_verified else "NO")
        row = [
            str(frame.index),
            f"{frame.address:#x}",
            frame.symbol_info,
            frame.region_kind,
            frame.protection,
            frame.method.value,
            verified,
        ]
        if show_bytes:
            row.append(frame.callsite_leading_bytes[-32:])
        table.add_row(*row, style=style)
    return table
