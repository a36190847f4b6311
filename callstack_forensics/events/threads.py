"""Per thread: which system call it is in, and what that call is doing (an :class:`Activity`).

The system call decides the event: a decoder per family turns its arguments into ECS
fields; when the arguments do not support a specific event (unreadable, or an
operation no rule cares about) the thread gets a thread-state event whose action says
what it is blocked in: ``wait`` (a wait-family call: object waits, sleeps, message,
port and worker-pool waits), ``io`` (reads, writes, device and file-system controls),
``syscall`` (any other call), or the scheduler state of a thread in no system call
(``wait`` for Waiting, else ``running``, ``ready``...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..engine.context import ProcessContext
from ..memory import ThreadInfo
from ..engine.stack import ThreadStack
from . import decode_api, decode_file, decode_library, decode_network, decode_process, decode_registry
from .activity import Activity, CallContext
from .paths import VolumeMap
from .sysargs import ArgumentReader
from .syscalls import Family, Syscall, SyscallTable, resolve_syscall

Decoder = Callable[[CallContext], "Activity | None"]
IO_FAMILIES = (Family.IO, Family.DEVICE_CONTROL, Family.FILE_WRITE, Family.FILE_SET_INFORMATION)
_DECODERS: dict[Family, Decoder] = {
    Family.FILE_WRITE: decode_file.decode_write,
    Family.FILE_SET_INFORMATION: decode_file.decode_set_information,
    Family.REGISTRY_SET: decode_registry.decode_set_value,
    Family.REGISTRY_CREATE: decode_registry.decode_create_key,
    Family.REGISTRY_DELETE: decode_registry.decode_delete,
    Family.SECTION_MAP: decode_library.decode_map_view,
    Family.SECTION_CREATE: decode_library.decode_create_section,
    Family.MEMORY_API: decode_api.decode_memory_api,
    Family.DEVICE_CONTROL: decode_network.decode_device_control,
}


@dataclass(slots=True)
class ThreadAnalysis:
    """A thread's stack, its system call, and the activity decoded from it."""

    stack: ThreadStack
    syscall: Syscall | None
    activity: Activity
    related: list[dict[str, Any]] = field(default_factory=list)
    argument_sources: dict[int, str] = field(default_factory=dict)
    note: str | None = None


def analyze_thread(ctx: ProcessContext, stack: ThreadStack, table: SyscallTable, volumes: VolumeMap) -> ThreadAnalysis:
    """Never raises: a decoder that fails leaves a note and a thread-state event."""
    syscall = resolve_syscall(stack, table)
    thread = stack.thread if isinstance(stack.thread, ThreadInfo) else ThreadInfo(stack.tid)
    call = CallContext(ctx.memory, stack, syscall or Syscall(None, None, Family.OTHER),
                       ArgumentReader(ctx.memory, thread), volumes)
    note = None
    try:
        activity = _decode(call, syscall)
    except Exception as exc:  # bad memory or a hostile structure: keep the thread's event
        activity, note = None, f"arguments of {syscall.name if syscall else 'the call'} not decoded ({exc})"
    if activity is None:
        activity = state_activity(stack, syscall)
    return ThreadAnalysis(stack, syscall, activity, call.related, dict(call.args.sources), note)


def _decode(call: CallContext, syscall: Syscall | None) -> Activity | None:
    loader = decode_library.in_loader(call.stack)
    activity = None
    if syscall is not None and syscall.name and call.args.thread.registers:
        activity = _by_family(call, syscall, loader)
    if activity is None and loader is not None:
        activity = decode_library.decode_load_in_progress(call, loader)
    return activity


def _by_family(call: CallContext, syscall: Syscall, loader: int | None) -> Activity | None:
    if syscall.family is Family.PROCESS_CREATE:
        if syscall.name == "NtCreateUserProcess":
            return decode_process.decode_create_user_process(call)
        return decode_process.decode_create_process_ex(call)
    if syscall.family is Family.FILE_CREATE:
        return decode_library.decode_loader_open(call) if loader is not None else decode_file.decode_create(call)
    decoder = _DECODERS.get(syscall.family)
    return decoder(call) if decoder is not None else None


def state_activity(stack: ThreadStack, syscall: Syscall | None) -> Activity:
    """The thread-state event's action (see the module docstring)."""
    state = getattr(stack.thread, "state", None)
    if syscall is not None and syscall.family is Family.WAIT:
        action = "wait"
    elif syscall is not None and syscall.family in IO_FAMILIES:
        action = "io"
    elif syscall is not None:
        action = "syscall"
    elif state == "Waiting":
        action = "wait"
    else:
        action = (state or "unknown").lower()
    return Activity("thread", action, ["info"])
