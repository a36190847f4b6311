"""Check 8: user-mode APCs whose routine lies in unbacked or RWX memory.

APC injection (QueueUserAPC / NtQueueApcThread into another process, Early Bird into a
suspended thread) leaves a KAPC on the target thread's user-mode APC list until the thread
next waits alertably (or starts). A memory image keeps that list; this module decodes each
KAPC's routine the way Windows stores it and names where it points:

- a WOW64 process's 32-bit routine is stored encoded (``Wow64EncodeApcRoutine``:
  ``-(routine << 2)``); it is decoded back (``-(value >> 2)``);
- ``QueueUserAPC`` queues ntdll's ``RtlDispatchAPC`` (``BaseDispatchAPC`` on older builds)
  with the caller's routine as the APC's NormalContext: the routine that will run is that
  context.

A minidump holds no APC lists; there, a thread caught running an APC shows it in its stack
(``KiUserApcDispatcher`` below the routine), which :func:`running_apc` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ...engine.context import ProcessContext
from ...engine.stack import Frame
from ...memory import ThreadInfo
from ...memory.implantstate import ApcState, QueuedApc
from .locate import Location, locate

# Exports that run the routine held in the APC's NormalContext (QueueUserAPC's dispatchers).
DISPATCHERS = {"ntdll.dll": ("RtlDispatchAPC",), "kernel32.dll": ("BaseDispatchAPC",),
               "kernelbase.dll": ("BaseDispatchAPC",)}
APC_ENTRY = "KiUserApcDispatcher"
SYSTEM_LAYER = frozenset({"ntdll.dll", "kernel32.dll", "kernelbase.dll", "wow64.dll", "wow64cpu.dll"})
MASK64 = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class DecodedApc:
    """A user APC with the routine that will run, named, and how it was decoded."""

    apc: QueuedApc
    routine: Location
    dispatcher: str | None  # the dispatcher's symbol_info when the routine is its context
    encoded: bool  # a WOW64 routine stored encoded

    @property
    def suspicious(self) -> bool:
        """The routine lies in unbacked memory or in RWX memory."""
        return self.routine.unbacked or self.routine.protection.startswith("RWX")

    def to_ecs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": "queued", "procedure": f"{self.routine.address:#x}"}
        out.update(self.routine.to_ecs())
        out.pop("address")
        out["normal_routine"] = f"{self.apc.normal_routine:#x}"
        out["argument1"] = f"{self.apc.normal_context:#x}"
        out["argument2"] = f"{self.apc.system_argument1:#x}"
        out["argument3"] = f"{self.apc.system_argument2:#x}"
        out["kapc"] = f"{self.apc.address:#x}"
        if self.dispatcher:
            out["dispatcher"] = self.dispatcher
        if self.encoded:
            out["wow64_encoded"] = True
        return out


def decode(ctx: ProcessContext, apc: QueuedApc) -> DecodedApc:
    """The routine a user APC will run (see the module docstring for the two encodings)."""
    raw, encoded = apc.normal_routine, False
    if ctx.memory.process.is_wow64 and raw >> 63:
        raw, encoded = wow64_decode(raw), True
    first = locate(ctx, raw)
    if first.export is not None and first.export_offset == 0 and first.export in DISPATCHERS.get(first.module, ()):
        return DecodedApc(apc, locate(ctx, apc.normal_context), first.symbol_info, encoded)
    return DecodedApc(apc, first, None, encoded)


def wow64_decode(value: int) -> int:
    """Wow64DecodeApcRoutine: ``-(value >> 2)`` with ``value`` a signed 64-bit pointer."""
    signed = value - (1 << 64) if value >> 63 else value
    return (-(signed >> 2)) & MASK64


def thread_fields(ctx: ProcessContext, thread: ThreadInfo, frames: Sequence[Frame]) -> tuple[dict[str, Any], list[str]]:
    """``process.thread.Ext`` fields for a thread's queued user APCs (from its APC list) and
    a user APC it is running now (from its stack), with the thread's alertable and pending
    flags beside them; no fields for a thread with neither (most threads)."""
    details: list[str] = []
    state = thread.apc_state
    entries: list[dict[str, Any]] = []
    if state is not None:
        for apc in (decode(ctx, a) for a in state.user_apcs):
            entries.append(apc.to_ecs())
            details.append(_describe(apc, state))
        if state.truncated:
            details.append(f"APC list cut: {state.truncated}")
    running = running_apc(frames)
    if running is not None:
        entries.append(running)
        details.append(f"running a user APC: {running['symbol_info']} below ntdll!{APC_ENTRY}")
    if not entries:
        return {}, details
    fields = _state_fields(state) if state is not None else {}
    fields["user_apcs"] = entries
    return fields, details


def _state_fields(state: ApcState) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if state.alertable is not None:
        out["alertable"] = state.alertable
    if state.user_apc_pending is not None:
        out["user_apc_pending"] = state.user_apc_pending
    return out


def _describe(apc: DecodedApc, state: ApcState) -> str:
    how = f" through {apc.dispatcher}" if apc.dispatcher else ""
    wait = " in an alertable user-mode wait" if state.alertable and state.wait_mode == "user" else ""
    return (f"user APC queued{wait}: KAPC at {apc.apc.address:#x} runs {apc.routine.symbol_info} "
            f"({apc.routine.protection}){how}")


def running_apc(frames: Sequence[Frame]) -> dict[str, Any] | None:
    """The user APC routine a thread is running: the first frame above ``KiUserApcDispatcher``
    (towards frame 0) outside the system DLLs that dispatch it, when one is there."""
    for index, frame in enumerate(frames):
        if frame.module is None or frame.module.name.lower() != "ntdll.dll" or f"!{APC_ENTRY}" not in frame.symbol_info:
            continue
        for inner in reversed(frames[:index]):
            if inner.module is not None and inner.module.name.lower() in SYSTEM_LAYER:
                continue
            module = inner.module.name.lower() if inner.module is not None else inner.summary_name
            return {"state": "running", "address": f"{inner.address:#x}", "symbol_info": inner.symbol_info,
                    "module": module, "protection": inner.protection, "region_type": inner.region_kind,
                    "frame": inner.index}
        return None
    return None
