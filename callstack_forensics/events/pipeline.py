"""From process memories to events: walk every thread, scan with YARA, build the events.

Shared by every front end (the Volatility plugins, tests): they only decide which
processes to open and which to emit. Nothing here raises for bad memory: a process
whose threads cannot be walked becomes a view with a note.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..engine.context import ProcessContext, WalkOptions
from ..hostfiles import HostFiles
from ..memory import ProcessInfo, ProcessMemory, ThreadInfo
from ..engine.modules import ImageCache
from ..engine.stack import StopReason, ThreadStack
from ..engine.walker import walk_thread
from ..hunt.contexts import find_context_records
from ..yara_scan import YaraScanner
from .builder import build_events
from .model import ProcessView, Snapshot
from .syscalls import SyscallTables


@dataclass
class EventPipeline:
    """Caches shared by all processes of one image (parsed modules, syscall tables, YARA rules)."""

    options: WalkOptions = field(default_factory=WalkOptions)
    images: ImageCache = field(default_factory=ImageCache)
    tables: SyscallTables = field(default_factory=SyscallTables)
    yara: YaraScanner | None = None

    def view(self, memory: ProcessMemory, note: str | None = None, tids: set[int] | None = None) -> ProcessView:
        """Walk every thread of a process (or only ``tids``) and scan its unbacked executable memory."""
        ctx = ProcessContext(memory, self.options, self.images)
        notes = [note] if note else []
        try:
            threads = list(memory.threads())
        except Exception as exc:  # a source that cannot list threads still yields a process event
            threads, notes = [], notes + [f"threads not listed ({exc})"]
        stacks = [_walk(ctx, thread) for thread in threads if not tids or thread.tid in tids]
        records = []
        try:
            scan = find_context_records(ctx, threads)  # takes the stack pages the walks read from the cache
            records = scan.records
            if scan.note:
                notes.append(scan.note)
        except Exception as exc:  # a hostile region list: the process keeps its events
            notes.append(f"CONTEXT-record scan failed ({exc})")
        ctx.cache.clear()  # the walks and the scan are done: their pages would only weigh on the run's memory
        yara = None
        if self.yara is not None and self.yara.available:
            try:
                yara = self.yara.scan(memory)
            except Exception as exc:
                notes.append(f"YARA scan failed ({exc})")
        return ProcessView(memory.process, ctx, stacks, yara, "; ".join(notes) or None, records)

    @staticmethod
    def identity_only(info: ProcessInfo, note: str | None = None) -> ProcessView:
        """A process known only by its identity (not walked: context for others, or unreadable)."""
        return ProcessView(info, note=note)

    def events(self, views: Iterable[ProcessView], observed_at: dt.datetime | None = None,
               emit: set[int] | None = None, files: HostFiles | None = None) -> list[dict[str, Any]]:
        return build_events(Snapshot(list(views), observed_at, emit, files), self.tables)


def _walk(ctx: ProcessContext, thread: ThreadInfo) -> ThreadStack:
    """walk_thread already turns bad memory into a note; this also covers what it does not expect."""
    try:
        return walk_thread(ctx, thread)
    except Exception as exc:
        proc = ctx.memory.process
        return ThreadStack(proc.pid, thread.tid, proc.name, stop_reason=StopReason.UNREADABLE,
                           note=f"walk failed ({type(exc).__name__}: {exc})", thread=thread)
