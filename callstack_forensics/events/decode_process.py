"""Process-creation requests from a thread blocked in NtCreateUserProcess / NtCreateProcessEx.

NtCreateUserProcess: the image and command line from RTL_USER_PROCESS_PARAMETERS
(argument 9) and the PS_ATTRIBUTE_IMAGE_NAME of the attribute list (argument 11). A
thread with no parameters whose stack runs ntdll's RtlCloneUserProcess (or
RtlCreateProcessReflection) straight into the call is forking its own process.
NtCreateProcessEx: the parent named by argument 4 and the image of the section of
argument 6. The request links the thread to the child it is creating (see lineage).
"""

from __future__ import annotations

import re
from typing import Any

from ..engine.stack import ThreadStack
from .activity import Activity, CallContext, ChildRequest
from .paths import file_fields
from .sysargs import CURRENT_PROCESS

CLONE_FUNCTIONS = ("ntdll.dll!rtlcloneuserprocess", "ntdll.dll!rtlcreateprocessreflection")
# A clone function's name at the start of a symbol or after a path's backslash: one search per frame
_CLONE_FRAME = re.compile(r"(?:^|\\)(?:" + "|".join(re.escape(name) for name in CLONE_FUNCTIONS) + ")")


def is_clone_frame(symbol_info: str) -> bool:
    text = symbol_info.lower()
    # the text both names share, found in C: almost no frame has it, and those skip the regex
    return "ntdll.dll!rtlc" in text and _CLONE_FRAME.search(text) is not None


def forking_now(stack: ThreadStack) -> bool:
    """Frame 0 is the system-call stub and the frames from there to a clone function are ntdll's
    own: the thread is inside RtlCloneUserProcess, creating a fork of its process."""
    for frame in stack.frames[1:]:
        if is_clone_frame(frame.symbol_info):
            return True
        if frame.module is None or frame.module.name.lower() != "ntdll.dll":
            return False
    return False


def decode_create_user_process(call: CallContext) -> Activity:
    image_path, command_line = call.args.process_parameters(call.structure(9, "RTL_USER_PROCESS_PARAMETERS"))
    attribute_image = call.args.attribute_image_name(call.structure(11, "PS_ATTRIBUTE_LIST"))
    image = call.dos(attribute_image or image_path)
    details = []
    if image_path is not None or command_line is not None:
        details.append("image and command line from RTL_USER_PROCESS_PARAMETERS")
    if attribute_image is not None:
        details.append("image name from the PS_ATTRIBUTE_IMAGE_NAME attribute")
    clone = image is None and command_line is None and forking_now(call.stack)
    if clone:
        details.append("no process parameters and RtlCloneUserProcess calls the stub: the thread forks its process")
    request = ChildRequest(image, command_line, call.pid, clone)
    return _creation(request, details)


def decode_create_process_ex(call: CallContext) -> Activity:
    handle, parent = call.handle(4, "parent process handle")
    _, section = call.handle(6, "section handle")
    parent_pid = call.pid if handle in (None, 0, CURRENT_PROCESS) else (parent.pid if parent else None)
    image = call.handle_path(section)
    details = [f"{call.syscall.name}: image from the section's file, parent from argument 4"]
    return _creation(ChildRequest(image, None, parent_pid, clone=section is None and forking_now(call.stack)), details)


def _creation(request: ChildRequest, details: list[str]) -> Activity:
    target: dict[str, Any] = {}
    if request.image:
        target["executable"] = request.image
        target["name"] = file_fields(request.image)["name"]
    if request.command_line is not None:
        target["command_line"] = request.command_line
    if request.parent_pid is not None:
        target["parent"] = {"pid": request.parent_pid}
    if request.clone:
        target["Ext"] = {"fork_clone": True}
    fields = {"Target": {"process": target}} if target else {}
    activity = Activity("process", "creation", ["info"], fields, details)
    activity.child = request
    return activity
