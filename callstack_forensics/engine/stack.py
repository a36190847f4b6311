"""The result model: frames and thread stacks, with Elastic's field names.

Frames are the engine's output and the event builder's input. Their JSON form
follows ../shared/docs/callstack-fields.md (Elastic Defend's
``process.thread.Ext.call_stack[]``) plus our own ``call_verified`` and
``method`` so that a responder can see how much to trust each frame.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class FoundBy(str, enum.Enum):
    """How a frame was found: from unwind data (or the context), or by scanning the stack."""

    UNWOUND = "unwound"
    SCANNED = "scanned"


class Trust(str, enum.Enum):
    """How sure the engine is that a frame is one of the thread's real frames.

    ``high``: the thread's context, unwind data or the EBP chain with the call before it
    verified, or a scanned value whose call leads to the function of the frame above.
    ``medium``: found where unwind data or the frame chain put it but the bytes that would
    verify the call are not in the source, or scanned with a call whose target or callee
    cannot be determined (a call through a register). ``low``: scanned, and its call leads
    to another function than the frame above (kept only when nothing better was found: a
    tail call does this, and so does a stale value).
    """

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class StopReason(str, enum.Enum):
    """Why a walk ended; every walk ends for exactly one of these."""

    END_OF_STACK = "end of stack"
    LEFT_STACK = "rsp left the stack bounds"
    NOT_INCREASING = "rsp did not increase"
    CYCLE = "cycle in the stack"
    FRAME_LIMIT = "frame limit reached"
    UNREADABLE = "stack memory not present"
    NO_RETURN_ADDRESS = "no further return address found"
    NO_CONTEXT = "no user-mode context"
    BYTE_LIMIT = "byte limit per thread reached"
    EXCEPTION_FRAME = "reached the exception dispatch frame"


UNBACKED = "Unbacked"
UNKNOWN = "Unknown"


@dataclass(slots=True)
class ModuleRef:
    """The module a frame (or a stack's final user module) points into."""

    name: str
    path: str
    base: int
    linked: bool = True


@dataclass(slots=True)
class Frame:
    """One frame of a call stack, most recent first.

    ``address`` is the thread's instruction pointer for frame 0 and a return
    address for every other frame. ``call_verified`` is None for frame 0 (it is
    not a return address) and when the bytes before the return address are not in
    the source, else whether those bytes decode to a call that ends exactly there.
    """

    index: int
    address: int
    method: FoundBy
    symbol_info: str = UNKNOWN
    module: ModuleRef | None = None
    region_kind: str = "unknown"
    protection: str = "Unknown"
    allocation_private_bytes: int | None = None
    call_verified: bool | None = None
    call_consistent: bool | None = None  # the call leads to the function of the frame above
    trust: Trust = Trust.HIGH
    call_target: int | None = None
    call_instruction: str | None = None
    callsite_leading_bytes: str = ""
    callsite_trailing_bytes: str = ""
    stack_pointer: int | None = None
    is_32bit: bool = False
    note: str | None = None

    @property
    def unbacked(self) -> bool:
        return self.symbol_info.startswith(UNBACKED)

    @property
    def summary_name(self) -> str:
        """The name this frame contributes to ``call_stack_summary``."""
        if self.module is not None:
            return self.module.name.lower()
        if self.unbacked:
            return UNBACKED
        return UNKNOWN

    def to_ecs(self) -> dict[str, Any]:
        """Elastic's per-frame fields plus ours (``call_verified``, ``method``...)."""
        out: dict[str, Any] = {
            "instruction_pointer": f"{self.address:#x}",
            "symbol_info": self.symbol_info,
            "callsite_leading_bytes": self.callsite_leading_bytes,
            "callsite_trailing_bytes": self.callsite_trailing_bytes,
            "protection": self.protection,
            "region_type": self.region_kind,
            "method": self.method.value,
            "call_verified": self.call_verified,
            "trust": self.trust.value,
        }
        if self.call_consistent is not None:
            out["call_consistent"] = self.call_consistent
        if self.module is not None:
            out["module_path"] = self.module.path.lower()
            out["module_name"] = self.module.name.lower()
            if not self.module.linked:
                out["module_unlinked"] = True
        if self.allocation_private_bytes is not None:
            out["allocation_private_bytes"] = self.allocation_private_bytes
        if self.call_target is not None:
            out["call_target"] = f"{self.call_target:#x}"
        if self.call_instruction:
            out["call_instruction"] = self.call_instruction
        if self.is_32bit:
            out["wow64"] = True
        if self.note:
            out["note"] = self.note
        return out


@dataclass(slots=True)
class FinalUserModule:
    """``call_stack_final_user_module``: the last non-Windows module, or Unbacked/Unknown."""

    name: str
    path: str | None = None
    allocation_private_bytes: int | None = None

    def to_ecs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.path:
            out["path"] = self.path.lower()
        if self.allocation_private_bytes is not None:
            out["allocation_private_bytes"] = self.allocation_private_bytes
        return out


@dataclass(slots=True)
class ExceptionStack:
    """A crash dump's faulting thread as it was at the exception (WinDbg's ``.ecxr``)."""

    code: int
    name: str
    address: int
    description: str
    frames: list[Frame] = field(default_factory=list)
    stop_reason: StopReason | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        head = {"code": f"{self.code:#010x}", "name": self.name, "address": f"{self.address:#x}",
                "description": self.description}
        return {**head, **walk_json(self.frames, self.stop_reason, self.note)}


def walk_json(frames: list[Frame], stop_reason: StopReason | None, note: str | None) -> dict[str, Any]:
    """A walk's frames, stop reason, per-stack fields and note (a thread's, or its stack at a fault)."""
    from .summary import summarize  # local: summary depends on this module

    out: dict[str, Any] = {"frames": [f.to_ecs() for f in frames],
                           "stop_reason": stop_reason.value if stop_reason else None}
    out.update(summarize(frames).to_ecs())
    if note:
        out["note"] = note
    return out


@dataclass(slots=True)
class ThreadStack:
    """A thread's rebuilt user-mode stack, or the reason there is none."""

    pid: int
    tid: int
    process_name: str
    frames: list[Frame] = field(default_factory=list)
    stop_reason: StopReason | None = None
    note: str | None = None
    is_wow64: bool = False
    thread: Any = None  # the ThreadInfo it was built from
    exception: ExceptionStack | None = None  # a crash dump's faulting thread, at the fault
    integrity: list[Any] = field(default_factory=list)  # integrity.IntegrityFailure: empty is a clean stack

    @property
    def complete(self) -> bool:
        return self.stop_reason == StopReason.END_OF_STACK and self.note is None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pid": self.pid, "tid": self.tid, "process_name": self.process_name,
                               **walk_json(self.frames, self.stop_reason, self.note)}
        if self.exception is not None:
            out["exception"] = self.exception.to_json()
        out["stack_integrity"] = integrity_fields(self.integrity)
        return out


def integrity_fields(failures: list[Any]) -> dict[str, Any]:
    """``stack_integrity``: ``verdict`` clean or suspicious, the checks that failed, and how."""
    if not failures:
        return {"verdict": "clean"}
    return {"verdict": "suspicious", "checks": sorted({f.check for f in failures}),
            "failures": [f.to_json() for f in failures]}
