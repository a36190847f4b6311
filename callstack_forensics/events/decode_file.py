"""File events from a thread blocked in NtCreateFile / NtOpenFile / NtWriteFile / NtSetInformationFile.

- creation: the name in OBJECT_ATTRIBUTES (argument 3), the action from CreateDisposition
  (argument 8: open, overwrite, or creation for the dispositions that may create);
- write: the file behind the handle (argument 1); ``file.Ext.header_bytes`` from the
  buffer (arguments 6 and 7) only when ByteOffset (argument 8) points to 0, i.e. the write
  is at the start of the file; a write at the current position or elsewhere says nothing
  about the file's header;
- rename: the old name from the handle, the new one from FILE_RENAME_INFORMATION
  (argument 3, class 10 or 65 in argument 5); deletion for FileDispositionInformation(Ex)
  asking to delete.
"""

from __future__ import annotations

import struct
from typing import Any

from .activity import Activity, CallContext
from .paths import file_fields

HEADER_BYTES = 16
DISPOSITIONS = {0: "creation", 1: "open", 2: "creation", 3: "creation", 4: "overwrite", 5: "overwrite"}
DISPOSITION_NAMES = {0: "FILE_SUPERSEDE", 1: "FILE_OPEN", 2: "FILE_CREATE", 3: "FILE_OPEN_IF", 4: "FILE_OVERWRITE",
                     5: "FILE_OVERWRITE_IF"}
RENAME_CLASSES = {10: "FileRenameInformation", 65: "FileRenameInformationEx"}
DISPOSITION_CLASSES = {13: "FileDispositionInformation", 64: "FileDispositionInformationEx"}
FILE_DISPOSITION_DELETE = 0x1
EVENT_TYPES = {"creation": ["creation"], "open": ["access"], "overwrite": ["creation", "change"],
               "modification": ["change"], "rename": ["change"], "deletion": ["deletion"]}


def file_activity(action: str, fields: dict[str, Any], details: list[str]) -> Activity:
    return Activity("file", action, EVENT_TYPES[action], {"file": fields}, details)


def decode_create(call: CallContext) -> Activity | None:
    attributes = call.structure(3, "OBJECT_ATTRIBUTES")
    name, root = call.args.object_attributes(attributes)
    path = call.joined(root, name, "file name", 3)
    if path is None:
        return None
    if call.syscall.name == "NtOpenFile":
        action, how = "open", "NtOpenFile"
    else:
        disposition = call.args.arg(8)
        action = DISPOSITIONS.get(disposition if disposition is not None else -1, "creation")
        how = f"CreateDisposition {DISPOSITION_NAMES.get(disposition or 0, disposition)}"
    return file_activity(action, file_fields(path), [f"file name from OBJECT_ATTRIBUTES ({how})"])


def decode_write(call: CallContext) -> Activity | None:
    _, info = call.handle(1, "file handle")
    fields = file_fields(call.handle_path(info))
    details = ["file from the handle's file object" if fields else "file handle not resolved"]
    buffer, length = call.args.arg(6), call.args.arg(7)
    offset_pointer = call.args.arg(8)
    offset = call.args.u64(offset_pointer) if offset_pointer else None
    if buffer and length and offset == 0:
        head = call.args.read(buffer, min(int(length), HEADER_BYTES))
        if head is not None:
            fields.setdefault("Ext", {})["header_bytes"] = head.hex()
            details.append(f"header bytes from the write buffer at {buffer:#x} (ByteOffset 0)")
    elif buffer and length:
        details.append("write not at offset 0 (or at the current position): header bytes unknown")
    if length is not None:
        fields.setdefault("Ext", {})["write_length"] = int(length)
    if not fields:
        return None
    return file_activity("modification", fields, details)


def decode_set_information(call: CallContext) -> Activity | None:
    info_class = call.args.arg(5)
    if info_class in RENAME_CLASSES:
        return _rename(call, RENAME_CLASSES[info_class])
    if info_class in DISPOSITION_CLASSES:
        return _disposition(call, info_class)
    return None


def _rename(call: CallContext, class_name: str) -> Activity | None:
    _, info = call.handle(1, "file handle (the file being renamed)")
    original = file_fields(call.handle_path(info))
    structure = call.structure(3, "FILE_RENAME_INFORMATION")
    new_name, root = call.args.rename_information(structure, call.args.arg(4))
    new_path = call.joined(root, new_name, "new name", 3)
    fields = file_fields(new_path)
    if original:
        fields.setdefault("Ext", {})["original"] = original
    if not fields:
        return None
    details = [f"rename ({class_name}): new name from FILE_RENAME_INFORMATION, original from the handle"]
    return file_activity("rename", fields, details)


def _disposition(call: CallContext, info_class: int) -> Activity | None:
    _, info = call.handle(1, "file handle (the file being deleted)")
    address = call.structure(3, "FILE_DISPOSITION_INFORMATION")
    raw = call.args.read(address, 4)
    if raw is None:
        return None
    flags = struct.unpack("<I", raw)[0] if info_class == 64 else raw[0]
    if not flags & FILE_DISPOSITION_DELETE:
        return None
    fields = file_fields(call.handle_path(info))
    return file_activity("deletion", fields, [f"{DISPOSITION_CLASSES[info_class]} with the delete flag set"])
