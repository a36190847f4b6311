"""A thread's debug registers and user APC queue, read from its _KTHREAD through the symbol table.

Why here: the implant checks need kernel state the adapter's thread row does not read. Every
offset comes from the image's own symbol table (``Tcb.Header.ActiveDR7``,
``Tcb.ApcState.ApcListHead``, ``_KAPC.NormalRoutine``, ``_KTRAP_FRAME.Dr7``...), resolved once
per image, and each structure is read as raw bytes, as rawstructs does for the thread row.

Debug registers: the kernel saves the user's Dr0-Dr3, Dr6 and Dr7 into the trap frame on entry
only while the thread's ``Header.ActiveDR7`` bit (DebugActive) is set, which SetThreadContext
sets when it enables a breakpoint; otherwise the trap frame's debug fields are stale and are
not reported. APCs: the user-mode list is ``ApcState.ApcListHead[UserMode]``; a list that loops,
breaks or runs past :data:`MAX_APCS` is cut with a note, never followed forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from volatility3.framework import exceptions, interfaces

from ..memory.implantstate import ApcState, DebugRegisters, QueuedApc
from .rawstructs import Field, LayoutUnknown, TypeFields, span

READ_ERRORS = (exceptions.InvalidAddressException, exceptions.PagedInvalidAddressException)
USER_MODE = 1
MAX_APCS = 64
DEBUG_SOURCE = "_KTRAP_FRAME (the thread's Header.ActiveDR7 is set)"


@dataclass(frozen=True, slots=True)
class ThreadStateLayout:
    """Where the fields lie: in the _ETHREAD (its Tcb), the _KTRAP_FRAME and the _KAPC."""

    active_dr7: Field
    alertable: Field | None
    wait_mode: Field | None
    user_apc_pending: Field | None
    user_list: int  # offset of ApcState.ApcListHead[UserMode] in the _ETHREAD
    flink: Field
    link_size: int
    thread_start: int
    thread_end: int
    debug: tuple[tuple[str, Field], ...]  # dr0..dr3, dr6, dr7 in the _KTRAP_FRAME
    debug_start: int
    debug_end: int
    apc_entry: int  # _KAPC.ApcListEntry
    apc: tuple[tuple[str, Field], ...]
    apc_start: int
    apc_end: int

    @classmethod
    def resolve(cls, context: interfaces.context.ContextInterface, table: str, mask: int) -> "ThreadStateLayout":
        ethread = TypeFields(context, table, "_ETHREAD", mask)
        link = TypeFields(context, table, "_LIST_ENTRY", mask)
        link_size = int(link.template.size)
        active = ethread.first("Tcb.Header.ActiveDR7", "Tcb.Header.DebugActive")
        if active is None:
            raise LayoutUnknown("no Header.ActiveDR7 or DebugActive in _KTHREAD")
        if active.start_bit is None:  # a layout naming only the byte: ActiveDR7 is its bit 0
            active = Field(active.offset, active.length, active.signed, 0, 1)
        user_list = ethread.offset("Tcb.ApcState.ApcListHead") + USER_MODE * link_size
        fields = [active, ethread.find("Tcb.Alertable"), ethread.find("Tcb.WaitMode"),
                  ethread.find("Tcb.ApcState.UserApcPending"), Field(user_list, link_size)]
        thread_start, thread_end = span(fields)
        trap = TypeFields(context, table, "_KTRAP_FRAME", mask)
        debug = tuple((name.lower(), trap.need(name)) for name in ("Dr0", "Dr1", "Dr2", "Dr3", "Dr6", "Dr7"))
        kapc = TypeFields(context, table, "_KAPC", mask)
        apc = tuple((name, kapc.need(name)) for name in ("NormalRoutine", "NormalContext", "SystemArgument1",
                                                          "SystemArgument2", "KernelRoutine"))
        apc_start, apc_end = span([f for _, f in apc])
        return cls(active, fields[1], fields[2], fields[3], user_list, link.need("Flink"), link_size, thread_start,
                   thread_end, debug, *span([f for _, f in debug]), kapc.offset("ApcListEntry"), apc, apc_start, apc_end)


class ThreadStateReader:
    """Reads one image's threads' debug registers and APC queues (kernel layer reads only)."""

    def __init__(self, layer: interfaces.layers.DataLayerInterface, layout: ThreadStateLayout):
        self._layer = layer  # the kernel's layer, or its FastReads: every read is of kernel memory
        self.layout = layout

    def read(self, ethread: int, trap_frame: int) -> tuple[DebugRegisters | None, ApcState | None]:
        """(debug registers, APC state) of the thread at ``ethread``; None for what does not read."""
        layout = self.layout
        try:
            data = self._layer.read(ethread + layout.thread_start, layout.thread_end - layout.thread_start)
        except READ_ERRORS:
            return None, None
        debug = self._debug(trap_frame) if layout.active_dr7.get(data, layout.thread_start) else None
        return debug, self._apcs(ethread, data)

    def _debug(self, trap_frame: int) -> DebugRegisters | None:
        layout = self.layout
        if not trap_frame:
            return None
        try:
            raw = self._layer.read(trap_frame + layout.debug_start, layout.debug_end - layout.debug_start)
        except READ_ERRORS:
            return None
        values = {name: member.get(raw, layout.debug_start) for name, member in layout.debug}
        return DebugRegisters(values["dr0"], values["dr1"], values["dr2"], values["dr3"], values["dr6"], values["dr7"],
                              DEBUG_SOURCE)

    def _apcs(self, ethread: int, data: bytes) -> ApcState:
        layout = self.layout

        def get(member: Field | None) -> int | None:
            return None if member is None else member.get(data, layout.thread_start)

        first = layout.flink.get(data, layout.thread_start - layout.user_list)
        apcs, truncated = self._user_list(ethread + layout.user_list, first)
        wait_mode = get(layout.wait_mode)
        alertable, pending = get(layout.alertable), get(layout.user_apc_pending)
        return ApcState(tuple(apcs), None if alertable is None else bool(alertable),
                        None if wait_mode is None else ("user" if wait_mode == USER_MODE else "kernel"),
                        None if pending is None else bool(pending), truncated)

    def _user_list(self, head: int, link: int) -> tuple[list[QueuedApc], str | None]:
        """The KAPCs on the list at ``head`` whose first link is ``link``."""
        layout = self.layout
        out: list[QueuedApc] = []
        seen = {head}
        while link and link not in seen:
            if len(out) >= MAX_APCS:
                return out, f"more than {MAX_APCS} APCs"
            seen.add(link)
            kapc = link - layout.apc_entry
            try:
                raw = self._layer.read(kapc + layout.apc_start, layout.apc_end - layout.apc_start)
                link = layout.flink.get(self._layer.read(link + layout.flink.offset, layout.flink.length),
                                        layout.flink.offset)
            except READ_ERRORS:
                return out, f"the KAPC at {kapc:#x} does not read"
            values = {name: member.get(raw, layout.apc_start) for name, member in layout.apc}
            out.append(QueuedApc(kapc, "user", values["NormalRoutine"], values["NormalContext"],
                                 values["SystemArgument1"], values["SystemArgument2"], values["KernelRoutine"]))
        if link and link != head:
            return out, f"the list loops back to {link:#x}"
        return out, None


def reader_for(context: interfaces.context.ContextInterface, table: str,
               kernel_layer: interfaces.layers.DataLayerInterface) -> ThreadStateReader | None:
    """A reader for this image, or None when its symbol table lacks a member (checks 7 and 8 then
    see nothing on it, and say so through the None they leave on each thread)."""
    try:
        mask = kernel_layer.address_mask
        return ThreadStateReader(kernel_layer, ThreadStateLayout.resolve(context, table, mask))
    except (LayoutUnknown, exceptions.SymbolError, AttributeError, KeyError, ValueError):
        return None


__all__ = ["ThreadStateLayout", "ThreadStateReader", "reader_for", "MAX_APCS"]
