"""API events (``event.category: api``) from a thread blocked in a memory or thread system call.

The names are the Win32 functions Elastic's API events report (``VirtualProtect``,
``WriteProcessMemory``...); the parameters come from the call's arguments, pointers
dereferenced (BaseAddress, RegionSize). A process handle other than the current process
(-1) makes the call cross-process: ``Target.process.pid`` from the handle's process object.
"""

from __future__ import annotations

from typing import Any

from ..memory import HandleInfo, page_protection
from .activity import Activity, CallContext
from .api_details import api_name, behaviors, target_metadata
from .sysargs import CURRENT_PROCESS, CURRENT_THREAD


def api_activity(call: CallContext, name: str, target_handle: int | None, target: HandleInfo | None,
                 parameters: dict[str, Any], details: list[str]) -> Activity:
    params = {k: v for k, v in parameters.items() if v is not None}
    remote = target_handle not in (None, CURRENT_PROCESS, CURRENT_THREAD)
    name = api_name(name, remote)
    api: dict[str, Any] = {"name": name, "parameters": params, "summary": _summary(name, params)}
    found = behaviors(call.stack, call.syscall.stub is not None, remote)
    if found:
        api["behaviors"] = found
    metadata = {} if remote else target_metadata(call.memory, params.get("address"))
    if metadata:
        api["metadata"] = metadata
    fields: dict[str, Any] = {"process": {"Ext": {"api": api}}}
    if remote and target is not None and target.pid is not None and target.pid != call.pid:
        fields["Target"] = {"process": {"pid": target.pid}}
    return Activity("api", name, ["info"], fields, details)  # event.action: the (Elastic) API name


def _summary(name: str, params: dict[str, Any]) -> str:
    parts = [f"{v:#x}" if isinstance(v, int) else str(v) for v in params.values()]
    return f"{name}( {', '.join(parts)} )"


def _protection(value: int | None) -> str | None:
    return None if value is None else page_protection(int(value))


def decode_memory_api(call: CallContext) -> Activity | None:
    name = call.syscall.name or ""
    decoder = _DECODERS.get(name)
    return decoder(call) if decoder is not None else None


def _allocate(call: CallContext) -> Activity:
    handle, target = call.handle(1, "process handle")
    base = call.args.u64(call.args.arg(2))
    size_arg, protect_arg = (3, 5) if call.syscall.name == "NtAllocateVirtualMemoryEx" else (4, 6)
    size = call.args.u64(call.args.arg(size_arg))
    protection = _protection(call.args.arg(protect_arg))
    return api_activity(call, "VirtualAlloc", handle, target, {"address": base, "size": size, "protection": protection},
                        [f"{call.syscall.name}: BaseAddress and RegionSize dereferenced"])


def _protect(call: CallContext) -> Activity:
    handle, target = call.handle(1, "process handle")
    base = call.args.u64(call.args.arg(2))
    size = call.args.u64(call.args.arg(3))
    protection = _protection(call.args.arg(4))
    return api_activity(call, "VirtualProtect", handle, target, {"address": base, "size": size, "protection": protection},
                        ["NtProtectVirtualMemory: BaseAddress and RegionSize dereferenced, NewProtect"])


def _process_memory(name: str):
    def decode(call: CallContext) -> Activity:
        handle, target = call.handle(1, "process handle")
        return api_activity(call, name, handle, target, {"address": call.args.arg(2), "size": call.args.arg(4)},
                            [f"{call.syscall.name}: BaseAddress and size"])
    return decode


def _thread_api(name: str, routine_arg: int | None):
    def decode(call: CallContext) -> Activity:
        handle, target = call.handle(1, "thread handle")
        params = {"routine": call.args.arg(routine_arg)} if routine_arg else {}
        return api_activity(call, name, handle, target, params, [f"{call.syscall.name}: thread handle"])
    return decode


def _create_thread(call: CallContext) -> Activity:
    handle, target = call.handle(4, "process handle")
    return api_activity(call, "CreateRemoteThread" if handle not in (None, CURRENT_PROCESS) else "CreateThread",
                        handle, target, {"start_address": call.args.arg(5)}, ["NtCreateThreadEx: StartRoutine"])


def _unmap(call: CallContext) -> Activity:
    handle, target = call.handle(1, "process handle")
    return api_activity(call, "UnmapViewOfFile", handle, target, {"address": call.args.arg(2)},
                        ["NtUnmapViewOfSection: BaseAddress"])


_DECODERS = {
    "NtAllocateVirtualMemory": _allocate,
    "NtAllocateVirtualMemoryEx": _allocate,
    "NtProtectVirtualMemory": _protect,
    "NtWriteVirtualMemory": _process_memory("WriteProcessMemory"),
    "NtReadVirtualMemory": _process_memory("ReadProcessMemory"),
    "NtQueueApcThread": _thread_api("QueueUserAPC", 2),
    "NtQueueApcThreadEx": _thread_api("QueueUserAPC", 3),
    "NtSetContextThread": _thread_api("SetThreadContext", None),
    "NtCreateThreadEx": _create_thread,
    "NtUnmapViewOfSection": _unmap,
}
