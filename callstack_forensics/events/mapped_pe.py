"""``pe.*`` of a module from its pages in memory: the VERSIONINFO strings and the imphash.

A mapped image keeps its resource section and its import directory (the loader reads both).
When those pages are in the image, ``original_file_name``, ``product``, ``company``,
``description`` and ``file_version`` come from the ``RT_VERSION`` resource, and ``imphash`` from
the import lookup tables (the names the module asked for, as pefile's ``get_imphash`` computes
it from the file; the IAT is not used, since loading overwrote it with addresses). A page that
is not present leaves its fields out; nothing is read from outside the module.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any, Callable

from pefile import ordlookup

from ..memory import MemoryMissing, Module, ProcessMemory

RT_VERSION = 16
DIR_IMPORT, DIR_RESOURCE = 1, 2
MAX_IMPORT_DLLS = 512
MAX_IMPORTS = 8192
MAX_VERSION_BYTES = 0x10000
IMPHASH_EXTENSIONS = ("ocx", "sys", "dll")
VERSION_KEYS = {"OriginalFilename": "original_file_name", "ProductName": "product", "CompanyName": "company",
                "FileDescription": "description", "FileVersion": "file_version"}

Reader = Callable[[int, int], bytes]


def mapped_pe_fields(memory: ProcessMemory, module: Module,
                     parsed: dict[bytes, dict[str, str]] | None = None) -> dict[str, str]:
    """Elastic's ``pe`` object for a module, from what of it is resident (possibly empty).

    ``parsed`` keeps the strings of each version resource by its bytes: a DLL loaded in a hundred
    processes has the same resource in each, read there every time, parsed once."""
    def read(rva: int, size: int) -> bytes:
        if rva < 0 or size < 0 or rva + size > module.size:
            raise MemoryMissing(module.base + rva, "outside the module")
        return memory.read(module.base + rva, size)

    try:
        directories, is64 = _directories(read)
    except Exception:  # a missing page or a hostile source (anything it raises) costs only these fields
        return {}
    out: dict[str, str] = {}
    for action in (lambda: _version(read, directories, parsed), lambda: _imphash(read, directories, is64)):
        try:
            out.update(action())
        except Exception:  # likewise: one part unreadable leaves the other
            continue
    return out


def _directories(read: Reader) -> tuple[list[tuple[int, int]], bool]:
    head = read(0, 0x40)
    if head[:2] != b"MZ":
        raise ValueError("no MZ header")
    nt = struct.unpack_from("<I", head, 0x3C)[0]
    if nt > 0x800:
        raise ValueError("e_lfanew out of range")
    header = read(nt, 0x108)
    if header[:4] != b"PE\0\0":
        raise ValueError("no PE signature")
    magic = struct.unpack_from("<H", header, 0x18)[0]
    is64 = magic == 0x20B
    first = 0x18 + (0x70 if is64 else 0x60)
    count = min(struct.unpack_from("<I", header, first - 4)[0], 16)
    table = read(nt + first, 8 * count)
    return [struct.unpack_from("<II", table, 8 * i) for i in range(count)], is64


# ---- VERSIONINFO ----------------------------------------------------------------------------------


def _version(read: Reader, directories: list[tuple[int, int]],
             parsed: dict[bytes, dict[str, str]] | None = None) -> dict[str, str]:
    if len(directories) <= DIR_RESOURCE or not directories[DIR_RESOURCE][0]:
        return {}
    root = directories[DIR_RESOURCE][0]
    leaf = _resource_leaf(read, root, RT_VERSION)
    if leaf is None:
        return {}
    rva, size = leaf
    data = read(rva, min(size, MAX_VERSION_BYTES))
    strings = parsed.get(data) if parsed is not None else None
    if strings is None:
        strings = _string_file_info(data)
        if parsed is not None:
            parsed[data] = strings
    return {VERSION_KEYS[k]: v for k, v in strings.items() if k in VERSION_KEYS and v}


def _resource_leaf(read: Reader, root: int, type_id: int) -> tuple[int, int] | None:
    """The first data entry under resource type ``type_id`` (any name, any language)."""
    offset = _entry(read, root, 0, type_id)
    for _ in range(2):  # name level, then language level
        if offset is None or not offset & 0x80000000:
            return None
        offset = _entry(read, root, offset & 0x7FFFFFFF, None)
    if offset is None or offset & 0x80000000:
        return None
    rva, size = struct.unpack("<II", read(root + offset, 8))
    return rva, size


def _entry(read: Reader, root: int, directory: int, wanted: int | None) -> int | None:
    head = read(root + directory, 16)
    named, ids = struct.unpack_from("<HH", head, 12)
    total = min(named + ids, 4096)
    entries = read(root + directory + 16, 8 * total)
    for i in range(total):
        name, target = struct.unpack_from("<II", entries, 8 * i)
        if wanted is None or (not name & 0x80000000 and name == wanted):
            return target
    return None


def _block(data: bytes, offset: int) -> tuple[str, bytes, int, int, int]:
    """A version block at ``offset``: (key, value bytes, first child offset, end, value type)."""
    length, value_length, kind = struct.unpack_from("<HHH", data, offset)
    end = min(offset + length, len(data))
    key_end = offset + 6
    while key_end + 1 < end and data[key_end:key_end + 2] != b"\0\0":
        key_end += 2
    key = data[offset + 6:key_end].decode("utf-16-le")
    value_start = (key_end + 2 + 3) & ~3
    value_size = value_length * 2 if kind == 1 else value_length
    value = data[value_start:min(value_start + value_size, end)]
    children = (value_start + value_size + 3) & ~3
    if length < 6:
        raise ValueError("empty version block")
    return key, value, children, end, kind


def _string_file_info(data: bytes) -> dict[str, str]:
    """The first string table's strings (``OriginalFilename``: ``Cmd.Exe``...)."""
    key, _, child, end, _ = _block(data, 0)
    if key != "VS_VERSION_INFO":
        return {}
    out: dict[str, str] = {}
    for info_key, _, info_child, info_end in _children(data, child, end):
        if info_key != "StringFileInfo":
            continue
        for _, _, table_child, table_end in _children(data, info_child, info_end)[:1]:
            for name, value, _, _ in _children(data, table_child, table_end):
                out.setdefault(name, value.decode("utf-16-le").split("\0", 1)[0])
    return out


def _children(data: bytes, start: int, end: int) -> list[tuple[str, bytes, int, int]]:
    """The blocks from ``start`` to ``end``: (key, value, first child offset, end)."""
    out = []
    offset = start
    while offset + 6 <= end and len(out) < 256:
        key, value, child, child_end, _ = _block(data, offset)
        out.append((key, value, child, child_end))
        if child_end <= offset:
            break
        offset = (child_end + 3) & ~3
    return out


# ---- imphash --------------------------------------------------------------------------------------


def _imphash(read: Reader, directories: list[tuple[int, int]], is64: bool) -> dict[str, str]:
    if len(directories) <= DIR_IMPORT or not directories[DIR_IMPORT][0]:
        return {}
    names: list[str] = []
    descriptor = directories[DIR_IMPORT][0]
    for index in range(MAX_IMPORT_DLLS):
        lookup, _, _, name_rva, first_thunk = struct.unpack("<IIIII", read(descriptor + 20 * index, 20))
        if not (lookup or name_rva or first_thunk):
            break
        if not lookup:  # no import lookup table: loading overwrote the only name list
            return {}
        dll = _c_string(read, name_rva)
        names.extend(_imports_of(read, dll, lookup, is64))
        if len(names) > MAX_IMPORTS:
            return {}
    if not names:
        return {}
    return {"imphash": hashlib.md5(",".join(names).encode()).hexdigest()}


def _imports_of(read: Reader, dll: str, lookup: int, is64: bool) -> list[str]:
    lib = dll.lower()
    parts = lib.rsplit(".", 1)
    if len(parts) > 1 and parts[1] in IMPHASH_EXTENSIONS:
        lib = parts[0]
    width, flag = (8, 1 << 63) if is64 else (4, 1 << 31)
    out = []
    for index in range(MAX_IMPORTS):
        (value,) = struct.unpack("<Q" if is64 else "<I", read(lookup + width * index, width))
        if not value:
            break
        if value & flag:
            name = ordlookup.ordLookup(dll.lower().encode(), value & 0xFFFF, make_name=True)
            name = name.decode() if isinstance(name, bytes) else name
        else:
            name = _c_string(read, (value & 0x7FFFFFFF) + 2)
        if name:
            out.append(f"{lib}.{name.lower()}")
    return out


def _c_string(read: Reader, rva: int, limit: int = 512) -> str:
    out = bytearray()
    while len(out) < limit:
        chunk = read(rva + len(out), 16)
        end = chunk.find(b"\0")
        if end >= 0:
            out += chunk[:end]
            return out.decode("ascii", "replace")
        out += chunk
    raise ValueError("unterminated name")


def with_pe(target: dict[str, Any], fields: dict[str, str]) -> None:
    """Add ``pe`` from memory unless the host's file already gave it (the file holds all of it)."""
    if fields and "pe" not in target:
        target["pe"] = dict(fields)
