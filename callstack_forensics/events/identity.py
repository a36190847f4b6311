"""``process.*``, ``process.parent.*`` and ``user.*`` from the process objects of the image.

``process.args`` / ``args_count`` (and the parent's) split the PEB's command line as
``CommandLineToArgvW`` does; ``process.working_directory`` is the PEB's
``ProcessParameters.CurrentDirectory``; ``process.Ext.token.integrity_level_name`` comes from
the primary token's integrity group. Each is absent when the image does not hold its source.

``process.code_signature`` comes from Code Integrity's verdict as the kernel cached it:
``_EPROCESS.SignatureLevel``, else the ``SigningLevel`` of the image's own loader entry.

``process.entity_id`` is built from the pid and the process's creation time, so it is
stable across runs and distinct when a pid is reused; the parent's is built the same way
from the parent's own object. A parent pid whose process was created after the child is a
reused pid: the real parent is gone, and only ``process.parent.pid`` is given.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..memory import ProcessInfo
from .model import ProcessView
from .paths import VolumeMap
from .cmdline import args_fields
from .signing import code_signature
from .token import token_fields


def timestamp(when: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds and a ``Z``, as Elastic writes ``@timestamp``."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    elif when.tzinfo is not dt.timezone.utc:
        when = when.astimezone(dt.timezone.utc)
    if when.year < 1000:  # strftime writes such a year without its leading zeros
        return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    # The same text as strftime's, a third of its cost (one per thread event and process)
    return when.isoformat(timespec="milliseconds")[:-6] + "Z"


def entity_id(info: ProcessInfo) -> str:
    created = timestamp(info.create_time)
    return f"{info.pid}@{created}" if created else f"{info.pid}@unknown-start"


def executable(info: ProcessInfo, volumes: VolumeMap) -> str | None:
    return info.path or volumes.dos_path(info.image_device_path)


def process_name(info: ProcessInfo, volumes: VolumeMap) -> str:
    """The image's file name (``ImageFileName`` is cut at 14 characters, the path is not)."""
    path = executable(info, volumes)
    return path.rstrip("\\").rsplit("\\", 1)[-1] if path else info.name


def process_fields(view: ProcessView, parent: ProcessView | None, volumes: VolumeMap) -> dict[str, Any]:
    """``process.*`` without thread fields: identity, image, parent, architecture, signature."""
    info = view.info
    out: dict[str, Any] = {"pid": info.pid, "entity_id": entity_id(info), "name": process_name(info, volumes)}
    path = executable(info, volumes)
    if path:
        out["executable"] = path
    if info.command_line is not None:
        out["command_line"] = info.command_line
    out.update(args_fields(info.command_line))
    if info.working_directory:
        out["working_directory"] = info.working_directory
    if info.create_time is not None:
        out["start"] = timestamp(info.create_time)
    out["parent"] = parent_fields(info, parent, volumes)
    ext: dict[str, Any] = {"architecture": "x86" if info.is_wow64 else "x86_64", "wow64": info.is_wow64}
    if info.session is not None:
        ext["session_id"] = info.session
    token = token_fields(info.integrity_sid)
    if token:
        ext["token"] = token
    out["Ext"] = ext
    signature = code_signature(info.signature_level or _image_signing_level(view))
    if signature:
        out["code_signature"] = signature
    return out


def _image_signing_level(view: ProcessView) -> int | None:
    """The loader entry's SigningLevel of the process's own image, when the process object has none."""
    if view.context is None or not view.info.path:
        return None
    try:
        modules = view.context.memory.modules()
    except Exception:
        return None
    path = view.info.path.lower()
    return next((m.signing_level for m in modules if m.path.lower() == path and m.signing_level), None)


def parent_fields(info: ProcessInfo, parent: ProcessView | None, volumes: VolumeMap) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if info.ppid is not None:
        out["pid"] = info.ppid
    if parent is None:
        return out
    out["entity_id"] = entity_id(parent.info)
    out["name"] = process_name(parent.info, volumes)
    path = executable(parent.info, volumes)
    if path:
        out["executable"] = path
    if parent.info.command_line is not None:
        out["command_line"] = parent.info.command_line
    out.update(args_fields(parent.info.command_line))
    signature = code_signature(parent.info.signature_level or _image_signing_level(parent))
    if signature:
        out["code_signature"] = signature
    return out


def user_fields(sid: str | None) -> dict[str, Any]:
    return {"user": {"id": sid}} if sid else {}
