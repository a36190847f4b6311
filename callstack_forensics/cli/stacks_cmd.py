"""``callstack-forensics stacks``: every thread's rebuilt frames, as rich tables or JSON lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table

from ..analysis import OpenedProcess, Source
from ..engine.context import ProcessContext, WalkOptions
from ..engine.modules import ImageCache
from ..sources import SourceError
from ..engine.stack import Frame, StopReason, ThreadStack
from ..engine.walker import walk_thread
from . import common
from .common import RunOptions
from .filters import check_filters
from .progress_view import RichStages
from .tables import compact_table, display_name
from ..wording import plural

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
        out = common.table_console(RunOptions(as_json=as_json))
        try:
            with RichStages(console) as stages:
                processes = listed(common.open_with_progress(source, opts, stages), stages)
            check_filters(source, opts.pids, opts.tids, processes)
            names: dict[int, str] = {}
            for group in by_process(iter_stacks(processes, opts.walk(), set(opts.pids), set(opts.tids), names)):
                if as_json:
                    sys.stdout.write("".join(json.dumps(s.to_json()) + "\n" for s in group))
                else:
                    print_process(out, group, show_bytes, names.get(group[0].pid))
        except SourceError as exc:
            raise common.fail(console, str(exc)) from exc


def listed(source: Source, stages: RichStages) -> list[OpenedProcess]:
    """Every process, opened once: the filters are checked on this list before any walk."""
    stages.stage("processes", None)
    processes: list[OpenedProcess] = []
    for item in source.processes():
        processes.append(item)
        stages.advance("processes", len(processes), f"PID {item.info.pid} {item.info.name}")
    stages.finish("processes", plural(len(processes), "process"))
    return processes


def by_process(stacks: Iterator[ThreadStack]) -> Iterator[list[ThreadStack]]:
    """The stacks, a process's at a time (they come process by process)."""
    group: list[ThreadStack] = []
    for stack in stacks:
        if group and group[-1].pid != stack.pid:
            yield group
            group = []
        group.append(stack)
    if group:
        yield group


def print_process(out: Console, stacks: list[ThreadStack], show_bytes: bool, name: str | None = None) -> None:
    """Each thread with frames as a table; the threads without (System's kernel threads, a paged-out
    trap frame) folded into one line per reason, as ``analyze`` notes them."""
    frameless: dict[str, list[int]] = {}
    for stack in stacks:
        if stack.frames or stack.exception is not None:
            out.print(stack_table(stack, show_bytes, name))
        else:
            frameless.setdefault(_why_no_frames(stack), []).append(stack.tid)
    for note, tids in frameless.items():
        head = f"PID {stacks[0].pid} {escape(name or stacks[0].process_name)}"
        out.print(f"{head}  {escape(thread_list(tids))}: {escape(note)}", highlight=False)


def _why_no_frames(stack: ThreadStack) -> str:
    if stack.note:
        return stack.note
    return f"stop: {stack.stop_reason.value}" if stack.stop_reason else "no frames"


def thread_list(tids: list[int]) -> str:
    """``TID 8`` or ``24 threads (TID 8, 12, ... and 16 more)``; a process row (TID 0) says so."""
    real = [t for t in tids if t]
    if not real:
        return "(process)"
    shown = ", ".join(map(str, real[:8])) + (f" and {len(real) - 8} more" if len(real) > 8 else "")
    return f"TID {shown}" if len(real) == 1 else f"{plural(len(real), 'thread')} (TID {shown})"


def iter_stacks(processes: list[OpenedProcess], options: WalkOptions, pids: set[int], tids: set[int],
                names: dict[int, str] | None = None) -> Iterator[ThreadStack]:
    """Each selected thread's stack; a process that could not be opened yields one stack saying why.
    ``names`` gets each selected process's whole name (from its image path), for the titles."""
    images = ImageCache()
    for item in processes:
        if pids and item.info.pid not in pids:
            continue
        if names is not None:
            names[item.info.pid] = display_name(item.info.name, item.info.path)
        if item.memory is None:
            yield ThreadStack(item.info.pid, 0, item.info.name, stop_reason=StopReason.UNREADABLE,
                              note=f"process not readable: {item.note}")
            continue
        ctx = ProcessContext(item.memory, options, images)
        for thread in item.memory.threads():
            if tids and thread.tid not in tids:
                continue
            yield walk_thread(ctx, thread)


def stack_table(stack: ThreadStack, show_bytes: bool = False, name: str | None = None) -> RenderableType:
    """The thread's frames; for a crash dump's faulting thread, first its stack at the fault
    (the exception's own context, as WinDbg's ``.ecxr``), then where the thread is now."""
    title = escape(f"PID {stack.pid} {name or stack.process_name}  TID {stack.tid}")
    note = stack.note
    if stack.integrity:  # the stack verdict: which integrity checks failed, and why
        verdict = "verdict: " + "; ".join(f"{f.check} ({f.detail})" for f in stack.integrity)
        note = f"{note}; {verdict}" if note else verdict
    now = _frames_table(title + ("  (now)" if stack.exception else ""), stack.frames, stack.stop_reason,
                        note, show_bytes)
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
    table = compact_table(title)
    table.caption, table.caption_justify = caption, "left"
    for col in ("#", "address", "symbol_info", "region", "prot", "found", "call", "trust"):
        if col == "symbol_info":
            table.add_column(col, overflow="fold", ratio=1, min_width=22)  # long paths wrap, never truncate
        else:
            table.add_column(col, no_wrap=True, justify="right" if col == "#" else "left")
    if show_bytes:
        table.add_column("call-site bytes (last 16)", overflow="fold", min_width=16)
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
