"""Registry events from a thread blocked in NtSetValueKey / NtCreateKey / NtDeleteKey / NtDeleteValueKey.

The key comes from the key handle (argument 1; the key object's control-block chain
names it), the value name from the UNICODE_STRING of argument 2, the data from
arguments 4-6 (type, buffer, size). Names follow Elastic: ``registry.path`` is
``HKLM\\<key>\\<value>``, user keys are under ``HKEY_USERS``; ``registry.data.strings``
holds string data, or the decimal number of a DWORD/QWORD.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from .activity import Activity, CallContext
from .paths import registry_key

REG_TYPES = {0: "REG_NONE", 1: "REG_SZ", 2: "REG_EXPAND_SZ", 3: "REG_BINARY", 4: "REG_DWORD",
             5: "REG_DWORD_BIG_ENDIAN", 6: "REG_LINK", 7: "REG_MULTI_SZ", 11: "REG_QWORD"}
MAX_DATA = 0x4000


def data_strings(kind: int, data: bytes) -> list[str] | None:
    """``registry.data.strings`` of a value: its strings, or a number as decimal text."""
    if kind in (1, 2, 6):
        return [data.decode("utf-16-le", "replace").split("\0", 1)[0]]
    if kind == 7:
        text = data.decode("utf-16-le", "replace")
        return [s for s in text.split("\0") if s]
    if kind == 4 and len(data) >= 4:
        return [str(struct.unpack_from("<I", data)[0])]
    if kind == 5 and len(data) >= 4:
        return [str(struct.unpack_from(">I", data)[0])]
    if kind == 11 and len(data) >= 8:
        return [str(struct.unpack_from("<Q", data)[0])]
    return None


def _key_fields(call: CallContext, kernel_name: str | None, value: str | None = None) -> dict[str, Any]:
    key = registry_key(kernel_name)
    if key is None:
        return {"path": kernel_name} if kernel_name else {}
    hive, rest = key
    path = "\\".join(p for p in (hive, rest) if p)
    out: dict[str, Any] = {"hive": hive, "key": rest}
    if value is not None:
        out["value"] = value
        path = f"{path}\\{value}"
    out["path"] = path
    return out


def decode_set_value(call: CallContext) -> Activity | None:
    _, info = call.handle(1, "key handle")
    value = call.args.unicode_string(call.structure(2, "UNICODE_STRING (value name)"))
    fields = _key_fields(call, info.name if info else None, value)
    kind, buffer, size = call.args.arg(4), call.args.arg(5), call.args.arg(6)
    data = call.args.read(buffer, int(size)) if buffer and size is not None and 0 < size <= MAX_DATA else None
    details = ["key from the key handle's control blocks, value name and data from the arguments"]
    if kind is not None:
        data_fields: dict[str, Any] = {"type": REG_TYPES.get(int(kind), f"{int(kind):#x}")}
        if data is not None:
            strings = data_strings(int(kind), data)
            if strings is not None:
                data_fields["strings"] = strings
            else:
                data_fields["bytes"] = base64.b64encode(data).decode()
        fields["data"] = data_fields
    if not fields:
        return None
    return Activity("registry", "modification", ["change"], {"registry": fields}, details)


def decode_create_key(call: CallContext) -> Activity | None:
    attributes = call.structure(3, "OBJECT_ATTRIBUTES")
    name, root = call.args.object_attributes(attributes)
    if root and name is not None:
        try:
            parent = call.memory.handle(root)
        except Exception:
            parent = None
        name = parent.name.rstrip("\\") + "\\" + name if parent is not None and parent.name else None
    fields = _key_fields(call, name)
    if not fields:
        return None
    return Activity("registry", "creation", ["creation"], {"registry": fields},
                    ["key name from OBJECT_ATTRIBUTES (NtCreateKey opens or creates it)"])


def decode_delete(call: CallContext) -> Activity | None:
    _, info = call.handle(1, "key handle")
    value = None
    if call.syscall.name == "NtDeleteValueKey":
        value = call.args.unicode_string(call.structure(2, "UNICODE_STRING (value name)"))
    fields = _key_fields(call, info.name if info else None, value)
    if not fields:
        return None
    return Activity("registry", "deletion", ["deletion"], {"registry": fields},
                    [f"{call.syscall.name}: key from the key handle"])
