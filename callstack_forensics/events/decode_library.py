"""Library-load events from a thread caught loading a module.

- NtMapViewOfSection on an image section (argument 1): the module is the section's backing
  file; where it lands and how big it is come from the BaseAddress and ViewSize pointers
  (arguments 3 and 7), and a view of a data section is an API event (MapViewOfFile) instead.
- NtCreateSection with SEC_IMAGE (argument 6): the file handle of argument 7.
- NtOpenFile / NtCreateFile with ntdll's loader (LdrLoadDll) on the stack: the file it opens.
- Any other call with LdrLoadDll on the stack: a load in progress, the module unnamed unless
  the loader is running a module's initialisation code (a frame of that module above
  ntdll's Ldr* frames).
"""

from __future__ import annotations

import re
from typing import Any

from ..engine.stack import Frame, ThreadStack
from ..engine.summary import WINDOWS_API_MODULES
from .activity import Activity, CallContext
from .decode_api import api_activity
from .signing import code_signature
from .sysargs import CURRENT_PROCESS

SEC_IMAGE = 0x1000000
LOADER_FRAMES = ("ntdll.dll!ldrloaddll", "ntdll.dll!ldrploaddll")
# A loader function's name at the start of a symbol or after a path's backslash: one search per frame
_LOADER_FRAME = re.compile(r"(?:^|\\)(?:" + "|".join(re.escape(name) for name in LOADER_FRAMES) + ")")


def in_loader(stack: ThreadStack) -> int | None:
    """Index of the first frame of ntdll's LdrLoadDll / LdrpLoadDll, or None."""
    for frame in stack.frames:
        text = frame.symbol_info.lower()
        # the text both names share, found in C: almost no frame has it, and those skip the regex
        if "ntdll.dll!ldr" in text and _LOADER_FRAME.search(text) is not None:
            return frame.index
    return None


def library_activity(call: CallContext, path: str | None, base: int | None, size: int | None,
                     details: list[str]) -> Activity:
    dll: dict[str, Any] = {}
    module = call.memory.module_at(base) if base else None
    if path is None and module is not None:
        path = call.dos(module.path)
        details.append("module path from the module mapped at the view's base")
    if path:
        dll["path"] = path
        dll["name"] = path.rstrip("\\").rsplit("\\", 1)[-1]
    ext: dict[str, Any] = {}
    if base:
        ext["mapped_address"] = f"{base:#x}"
        region = call.memory.region_at(base)
        if region is not None and region.private_executable_bytes is not None:
            ext["allocation_private_bytes"] = region.private_executable_bytes
    if size:
        ext["mapped_size"] = int(size)
    if module is not None and not module.linked:
        ext["unlinked"] = True
    if ext:
        dll["Ext"] = ext
    signature = code_signature(module.signing_level) if module is not None else None
    if signature:
        dll["code_signature"] = signature
    return Activity("library", "load", ["start"], {"dll": dll} if dll else {}, details)


def decode_map_view(call: CallContext) -> Activity | None:
    _, section = call.handle(1, "section handle")
    process_handle, target = call.handle(2, "process handle")
    base = call.args.u64(call.args.arg(3))
    size = call.args.u64(call.args.arg(7))
    if section is not None and section.image_section is False:
        return api_activity(call, "MapViewOfFile", process_handle, target,
                            {"address": base, "size": size}, ["a view of a data section"])
    details = [f"NtMapViewOfSection of {'an image' if section and section.image_section else 'a'} section"]
    remote = process_handle not in (None, CURRENT_PROCESS)
    if remote:
        details.append("into another process")
        base = None  # the address is in the target's address space, not this one's
    activity = library_activity(call, call.handle_path(section), base, size, details)
    if remote and target is not None and target.pid is not None:
        activity.fields["Target"] = {"process": {"pid": target.pid}}
    return activity


def decode_create_section(call: CallContext) -> Activity | None:
    attributes = call.args.arg(6)
    if attributes is None or not attributes & SEC_IMAGE:
        return None
    _, info = call.handle(7, "file handle")
    return library_activity(call, call.handle_path(info), None, None, ["NtCreateSection with SEC_IMAGE"])


def decode_loader_open(call: CallContext) -> Activity | None:
    name, root = call.args.object_attributes(call.structure(3, "OBJECT_ATTRIBUTES"))
    path = call.joined(root, name, "file name", 3)
    return library_activity(call, path, None, None, [f"{call.syscall.name} of the module's file inside LdrLoadDll"])


def decode_load_in_progress(call: CallContext, loader_index: int) -> Activity:
    module = _initialising_module(call.stack.frames[:loader_index])
    details = [f"ntdll!LdrLoadDll at frame {loader_index}: a load in progress"]
    path = None
    if module is not None:
        path = call.dos(module.module.path if module.module else None)
        details.append(f"frame {module.index} runs the module's own code (its initialisation) under the loader")
    return library_activity(call, path, module.module.base if module and module.module else None, None, details)


def _initialising_module(frames: list[Frame]) -> Frame | None:
    """The frame nearest the loader's frames that lies in a module outside Windows' API layer."""
    for frame in reversed(frames):
        if frame.module is not None and frame.module.name.lower() not in WINDOWS_API_MODULES:
            return frame
    return None
