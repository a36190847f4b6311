"""Fields from the host's files (``--files``): ``hash.*``, ``pe.*``, Authenticode ``code_signature``.

For a process image, a loaded module or a stack's final user module, the collected file at the
module's path is used only when it is that module (SizeOfImage and TimeDateStamp agree; see
:mod:`..hostfiles.facts`). Where it came from is said beside the fields (``Ext.file_source``: the
collected file), and the signature keeps the image's own signing level in ``Ext.signing_level``:
the file's Authenticode verdict (``exists``, ``trusted``, ``status``, ``subject_name``) replaces
what the level alone said. Without a matching file nothing is added.
"""

from __future__ import annotations

import struct
from typing import Any

from ..hostfiles import FileFacts, HostFiles
from ..memory import MemoryMissing, Module, ProcessMemory

E_LFANEW = 0x3C


def module_facts(files: HostFiles | None, memory: ProcessMemory, module: Module) -> FileFacts | None:
    """The file evidence of a module, its timestamp taken from the mapped header when the loader
    entry has none."""
    if files is None:
        return None
    timestamp = module.timestamp or _header_timestamp(memory, module)
    return files.facts(module.path, module.size, timestamp)


def _header_timestamp(memory: ProcessMemory, module: Module) -> int | None:
    try:
        head = memory.read(module.base, 0x400)
        offset = struct.unpack_from("<I", head, E_LFANEW)[0]
        if offset + 12 > len(head) or head[offset:offset + 4] != b"PE\0\0":
            return None
        return struct.unpack_from("<I", head, offset + 8)[0] or None
    except (MemoryMissing, struct.error, Exception):  # a header that does not read matches nothing
        return None


def apply_facts(target: dict[str, Any], facts: FileFacts | None, signature_as_list: bool = False) -> None:
    """Write ``hash``, ``pe`` and ``code_signature`` from ``facts`` into ``target`` (a ``process``,
    ``dll`` or final-user-module object), saying which file they came from."""
    if facts is None:
        return
    target["hash"] = dict(facts.hashes)
    if facts.pe:
        target["pe"] = dict(facts.pe)
    ext = target.setdefault("Ext", {}) if not signature_as_list else target
    ext["file_source"] = str(facts.path)
    if facts.signature is None:
        return
    current = target.get("code_signature")
    level = current[0] if isinstance(current, list) and current else current
    signature = dict(facts.signature)
    signature["Ext"] = dict((level or {}).get("Ext", {}), source=f"Authenticode, {facts.path.name}")
    target["code_signature"] = [signature] if signature_as_list else signature


def image_module(memory: ProcessMemory, path: str | None) -> Module | None:
    """The module that is the process's own image (its path is the PEB's image path)."""
    if not path:
        return None
    try:
        return next((m for m in memory.modules() if m.path.lower() == path.lower()), None)
    except Exception:
        return None
