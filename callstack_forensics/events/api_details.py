"""What Elastic's API events add to the call's name and parameters, from the thread's evidence.

- The name Elastic gives a call on another process: ``VirtualAllocEx``, ``VirtualProtectEx``,
  ``MapViewOfFile2`` (the Win32 functions that take a process handle); the local forms keep
  ``VirtualAlloc``, ``VirtualProtect``, ``MapViewOfFile``.
- ``behaviors`` the stack and the call show: ``cross-process`` (a handle to another process),
  ``native_api`` (the frame that called the ``Nt*`` stub lies outside Windows' API DLLs: the
  program called ntdll itself), ``direct_syscall`` (frame 0 is no genuine Windows stub: the
  ``syscall`` instruction was the program's own). Behaviours that would need the call's history
  (what the memory held before, whether the call later succeeded) are not claimed.
- ``metadata.target_address_name`` / ``target_address_path``: what the call's address lies in,
  for a call on the process itself: the module's name and path, or ``Unbacked`` for private
  memory or a mapping without a file. A remote address lies in another address space; it is
  left out.
"""

from __future__ import annotations

from typing import Any

from ..engine.stack import UNBACKED, ThreadStack
from ..engine.summary import WINDOWS_API_MODULES
from ..memory import ProcessMemory, RegionKind

REMOTE_NAMES = {"VirtualAlloc": "VirtualAllocEx", "VirtualProtect": "VirtualProtectEx", "MapViewOfFile": "MapViewOfFile2"}
STUB_MODULES = frozenset({"ntdll.dll", "win32u.dll"})


def api_name(name: str, remote: bool) -> str:
    return REMOTE_NAMES.get(name, name) if remote else name


def behaviors(stack: ThreadStack, genuine_stub: bool, remote: bool) -> list[str]:
    out = ["cross-process"] if remote else []
    frames = stack.frames
    if genuine_stub and len(frames) > 1:
        caller = frames[1]
        name = caller.module.name.lower() if caller.module is not None else None
        if name not in WINDOWS_API_MODULES and (name is not None or caller.unbacked):
            out.append("native_api")
    if frames and not genuine_stub and _stub_outside_windows(frames[0]):
        out.append("direct_syscall")
    return out


def _stub_outside_windows(frame: Any) -> bool:
    """Frame 0 is known to lie outside ntdll and win32u (a module of the program, or unbacked)."""
    if frame.module is not None:
        return frame.module.name.lower() not in STUB_MODULES
    return frame.unbacked


def target_metadata(memory: ProcessMemory, address: int | None) -> dict[str, Any]:
    if not address:
        return {}
    try:
        module = memory.module_at(address)
        if module is not None:
            return {"target_address_name": module.name, "target_address_path": module.path.lower()}
        region = memory.region_at(address)
    except Exception:  # a region list that does not read names nothing
        return {}
    if region is None:
        return {}
    if region.kind == RegionKind.PRIVATE or (region.kind == RegionKind.MAPPED and not region.path):
        return {"target_address_name": UNBACKED}
    if region.path:
        return {"target_address_name": region.path.replace("/", "\\").rsplit("\\", 1)[-1],
                "target_address_path": region.path.lower()}
    return {}
