"""``callstacks.stacks``: one row per frame of every thread's rebuilt user-mode call stack."""

from __future__ import annotations

import logging
from typing import Iterator

from volatility3.framework import interfaces, renderers
from volatility3.framework.configuration import requirements as vol_requirements
from volatility3.framework.renderers import format_hints

from callstack_forensics.engine.context import ProcessContext
from callstack_forensics.engine.modules import ImageCache
from callstack_forensics.engine.stack import ThreadStack
from callstack_forensics.engine.walker import walk_thread
from callstack_forensics.memory import ProcessInfo
from callstack_forensics.volatility import adapter, requirements
from callstack_forensics.volatility.source import bare_info
from callstack_forensics.process_life import freeze_at_exit

vollog = logging.getLogger(__name__)

COLUMNS = [("PID", int), ("Process", str), ("TID", int), ("Frame", int), ("Address", format_hints.Hex),
           ("Symbol", str), ("Region", str), ("Protection", str), ("Found", str), ("CallVerified", bool),
           ("Trust", str), ("Verdict", str), ("Note", str)]
BYTES_COLUMNS = [("LeadingBytes", format_hints.HexBytes), ("TrailingBytes", format_hints.HexBytes)]


class Stacks(interfaces.plugins.PluginInterface):
    """Rebuilds every thread's user-mode call stack (x64 unwind data, call-site validation, WOW64)."""

    _required_framework_version = (2, 0, 0)
    _version = (2, 0, 0)

    @classmethod
    def get_requirements(cls) -> list[interfaces.configuration.RequirementInterface]:
        return requirements.process_requirements() + [
            vol_requirements.ListRequirement(name="tid", element_type=int, description="Thread IDs to include", optional=True),
            vol_requirements.BooleanRequirement(
                name="bytes", description="Add the call-site bytes of each frame", default=False, optional=True
            ),
        ]

    def _generator(self, show_bytes: bool) -> Iterator[tuple[int, tuple]]:
        tids = set(self.config.get("tid") or ())
        options = requirements.walk_options(self.config)
        images = ImageCache()
        kernel = self.config["kernel"]
        procs = list(adapter.list_processes(self.context, kernel, self.config.get("pid")))
        for number, proc in enumerate(procs):
            self._progress_callback(100.0 * number / max(len(procs), 1), f"Rebuilding stacks of process {int(proc.UniqueProcessId)}")
            memory = adapter.open_process(self.context, kernel, proc)
            if isinstance(memory, str):
                vollog.warning("PID %d: %s", int(proc.UniqueProcessId), memory)
                yield _process_row(bare_info(proc), f"process not readable: {memory}", show_bytes)
                continue
            ctx = ProcessContext(memory, options, images)
            for thread in memory.threads():
                if tids and thread.tid not in tids:
                    continue
                yield from _rows(walk_thread(ctx, thread), show_bytes)
            # what the process lost (a cut VAD tree, a broken list) is said in the grid, after the
            # walks, since the adapter reads VADs and lists lazily while walking
            for note in memory.notes:
                yield _process_row(memory.process, f"process: {note}", show_bytes)

    def run(self) -> renderers.TreeGrid:
        freeze_at_exit()  # vol exits after the plugin: without its last scan of the heap (~0.1 s)
        show_bytes = bool(self.config.get("bytes"))
        return renderers.TreeGrid(COLUMNS + (BYTES_COLUMNS if show_bytes else []), self._generator(show_bytes))


def _process_row(info: ProcessInfo, note: str, show_bytes: bool) -> tuple[int, tuple]:
    """A row about a whole process (no thread): why it or part of it could not be read."""
    na = renderers.NotAvailableValue()
    row = (info.pid, info.name) + (na,) * 10 + (note,)
    return (0, row + ((na, na) if show_bytes else ()))


def _rows(stack: ThreadStack, show_bytes: bool) -> Iterator[tuple[int, tuple]]:
    na = renderers.NotAvailableValue()
    if not stack.frames:
        row = (stack.pid, stack.process_name, stack.tid) + (na,) * 9 + (stack.note or "no frames",)
        yield (0, row + ((na, na) if show_bytes else ()))
        return
    # the thread's stack verdict, on each of its rows: clean, or the integrity checks it failed
    verdict = ", ".join(sorted({f.check for f in stack.integrity})) or "clean"
    for frame in stack.frames:
        last = frame.index == len(stack.frames) - 1
        note = frame.note or (stack.note if last and stack.note else "")
        if last and stack.stop_reason and not note:
            note = f"stop: {stack.stop_reason.value}"
        row = (
            stack.pid,
            stack.process_name,
            stack.tid,
            frame.index,
            format_hints.Hex(frame.address),
            frame.symbol_info,
            frame.region_kind,
            frame.protection,
            frame.method.value,
            na if frame.call_verified is None else frame.call_verified,
            frame.trust.value,
            verdict,
            note,
        )
        if show_bytes:
            row += (format_hints.HexBytes(bytes.fromhex(frame.callsite_leading_bytes)),
                    format_hints.HexBytes(bytes.fromhex(frame.callsite_trailing_bytes)))
        yield (0, row)
