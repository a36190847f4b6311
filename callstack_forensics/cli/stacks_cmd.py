"""``callstack-forensics stacks``: every thread's rebuilt frames, as rich tables or JSON lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console, Group, RenderableType
from rich.table import Table

from ..analysis import Source
from ..engine.context import ProcessContext, WalkOptions
from ..engine.modules import ImageCache
from ..sources import SourceError
from ..engine.stack import Frame, StopReason, ThreadStack
from ..engine.walker import walk_thread
from . import common
from .common import RunOptions
from .progress_view import RichStages

EXAMPLE = """Examples:

  callstack-forensics stacks notepad.dmp --tid 1234 --bytes

  callstack-forensics stacks mem.raw --symbols ./symbols --pid 6092 --json"""


def register(app: typer.Typer) -> None:
    @app.command("stacks", help=f"Print every thread's rebuilt user-mode call stack.\n\n{EXAMPLE}")
    def stacks(
        source: Path = typer.Argument(..., help=common.SOURCE_HELP),
        pid: Optional[list[int]] = typer.Option(None, "--pid", help="Only these process ids (repeatable)."),
        tid: Optional[list[int]] = typer.Option(None, "--tid", help="Only these thread ids (repeatable)."),
        symbols: Optional[list[Path]] = common.symbols_option(),
        modules: Optional[list[Path]] = common.modules_option(),
        cache_dir: Optional[Path] = common.cache_dir_option(),
        as_json: bool = typer.Option(False, "--json", help="One JSON object per thread on stdout."),
        quiet: bool = common.quiet_option(),
        show_bytes: bool = typer.Option(False, "--bytes", help="Show the call-site bytes in the table."),
        max_frames: int = typer.Option(256, "--max-frames", min=1, help="Frames per stack at most."),
        max_stack_bytes: int = typer.Option(1 << 20, "--max-stack-bytes", min=4096, help="Stack bytes one thread's scan may read."),
    ) -> None:
        opts = RunOptions(symbols=list(symbols or []), pids=list(pid or []), tids=list(tid or []), as_json=as_json,
                          quiet=quiet, modules_dirs=list(modules or []), cache_dir=cache_dir, max_frames=max_frames, max_stack_bytes=max_stack_bytes,
                          hash_source=False)
        console = common.human_console(opts)
        out = Console(width=200) if not Console().is_terminal else Console()
        try:
            with RichStages(console) as stages:
                opened = common.open_with_progress(source, opts, stages)
            for result in iter_stacks(opened, opts.walk(), set(opts.pids), set(opts.tids)):
                if as_json:
                    sys.stdout.write(json.dumps(result.to_json()) + "\n")
                else:
                    out.print(stack_table(result, show_bytes))
        except SourceError as exc:
            raise common.fail(console, str(exc)) from exc


def iter_stacks(source: Source, options: WalkOptions, pids: set[int], tids: set[int]) -> Iterator[ThreadStack]:
    """Each selected thread's stack; a process that could not be opened yields one stack saying why."""
    images = ImageCache()
    for item in source.processes():
        if pids and item.info.pid not in pids:
            continue
        if item.memory is None:
            yield ThreadStack(item.info.pid, 0, item.info.name, stop_reason=StopReason.UNREADABLE,
                              note=f"process not readable: {item.note}")
            continue
        ctx = ProcessContext(item.memory, options, images)
        for thread in item.memory.threads():
            if tids and thread.tid not in tids:
                continue
            yield walk_thread(ctx, thread)


def stack_table(stack: ThreadStack, show_bytes: bool = False) -> RenderableType:
    """The thread's frames; for a crash dump's faulting thread, first its stack at the fault
    (the exception's own context, as WinDbg's ``.ecxr``), then where the thread is now."""
    title = f"PID {stack.pid} {stack.process_name}  TID {stack.tid}"
    now = _frames_table(title + ("  (now)" if stack.exception else ""), stack.frames, stack.stop_reason,
                        stack.note, show_bytes)
    if stack.exception is None:
        return now
    exc = stack.exception
    at_fault = _frames_table(f"{title}  (at the exception: {exc.description})", exc.frames, exc.stop_reason,
                             exc.note, show_bytes)
    return Group(at_fault, now)


def _frames_table(title: str, frames: list[Frame], stop: StopReason | None, note: str | None,
                  show_bytes: bool) -> Table:
    caption = f"stop: {stop.value if stop else '-'}"
    if note:
        caption += f"  note: {note}"
    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for col in ("#", "address", "symbol_info", "region", "prot", "found", "call", "trust"):
        if col == "symbol_info":
            table.add_column(col, overflow="fold", ratio=1)  # long paths wrap, never truncate
        else:
            table.add_column(col, no_wrap=True)
    if show_bytes:
        table.add_column("callsite_leading_bytes (last 16)")
    for frame in frames:
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
            frame.trust.value,
        ]
        if show_bytes:
            row.append(frame.callsite_leading_bytes[-32:])
        table.add_row(*row, style=style)
    return table
