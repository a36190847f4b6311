"""What a thread blocked in a system call is doing, as the arguments of that call hold it.

A memory image shows state, not history: the evidence of "this thread is
writing C:\\x.exe" is in the blocked system call's arguments, exactly where
the x64 calling convention put them: the first four in the trap frame
(R10/RCX, RDX, R8, R9), the rest on the user stack above the stub's return
address (``[rsp+0x28]`` on), pointing at the usual structures
(OBJECT_ATTRIBUTES with the object's NT path, the bytes being written, a
FILE_RENAME_INFORMATION, the value name and data...) and at handles the
process's handle table resolves to named file, key and section objects.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Callable

from .machine import Machine, set_unicode, utf16z
from .obmanager import registry_nt_path
from .plan import HandlePlan

REG_TYPES = {"REG_NONE": 0, "REG_SZ": 1, "REG_EXPAND_SZ": 2, "REG_BINARY": 3, "REG_DWORD": 4, "REG_MULTI_SZ": 7,
             "REG_QWORD": 11}
PS_ATTRIBUTE_IMAGE_NAME = 0x20005
ARG_KEYS = {
    "NtCreateFile": {"path", "disposition"},
    "NtOpenFile": {"path"},
    "NtWriteFile": {"path", "data", "text"},
    "NtReadFile": {"path"},
    "NtSetInformationFile": {"path", "new_path"},
    "NtSetValueKey": {"key", "value", "data", "type"},
    "NtCreateKey": {"key"},
    "NtCreateUserProcess": {"image", "command_line"},
    "NtMapViewOfSection": {"path", "base", "size"},
    "NtProtectVirtualMemory": {"address", "size", "protection"},
    "NtAllocateVirtualMemory": {"address", "size", "protection"},
}
PAGE_PROTECTIONS = {"---": 0x01, "R--": 0x02, "RW-": 0x04, "--X": 0x10, "R-X": 0x20, "RWX": 0x40}
CURRENT_PROCESS = 0xFFFFFFFFFFFFFFFF
MEM_COMMIT_RESERVE = 0x3000


class ArgumentError(ValueError):
    """The scenario's arguments do not fit the system call."""


@dataclass
class Arguments:
    values: list[int]                                   # argument 1 first
    writes: list[tuple[int, bytes]] = field(default_factory=list)
    handles: list[HandlePlan] = field(default_factory=list)

    @property
    def registers(self) -> dict[str, int]:
        first = self.values + [0] * (4 - len(self.values))
        return {"rcx": first[0], "r10": first[0], "rdx": first[1], "r8": first[2], "r9": first[3]}

    @property
    def stack(self) -> list[int]:
        return self.values[4:]


def nt_path(win32_path: str) -> str:
    """``C:\\Users\\x`` -> ``\\??\\C:\\Users\\x`` (what Win32 hands to Nt* calls)."""
    return win32_path if win32_path.startswith("\\") else "\\??\\" + win32_path


def volume_path(win32_path: str) -> str:
    """``C:\\Users\\x`` -> ``\\Users\\x`` (a FILE_OBJECT's name, below its volume device)."""
    return win32_path[2:] if len(win32_path) > 1 and win32_path[1] == ":" else win32_path


class ArgumentBuilder:
    """Lays out one system call's arguments in a process's memory."""

    def __init__(self, m: Machine, alloc: Callable[[int], int], next_handle: Callable[[], int]) -> None:
        self.m = m
        self.alloc = alloc
        self.next_handle = next_handle

    def build(self, syscall: str, args: dict) -> Arguments:
        if syscall not in ARG_KEYS:
            raise ArgumentError(f"the forge does not know the arguments of {syscall} "
                                f"(known: {', '.join(sorted(ARG_KEYS))})")
        unknown = set(args) - ARG_KEYS[syscall]
        if unknown:
            raise ArgumentError(f"{syscall} takes {', '.join(sorted(ARG_KEYS[syscall]))}, not {', '.join(sorted(unknown))}")
        out = Arguments([])
        getattr(self, "_" + syscall)(args, out)
        return out

    # ---- memory helpers ----------------------------------------------------------

    def _put(self, out: Arguments, data: bytes) -> int:
        va = self.alloc(max(len(data), 8))
        out.writes.append((va, data))
        return va

    def _unicode(self, out: Arguments, text: str) -> int:
        """A UNICODE_STRING and its buffer; returns the structure's address."""
        us = self.m.struct("_UNICODE_STRING")
        buffer = self._put(out, utf16z(text))
        length = len(text.encode("utf-16-le"))
        us.set("Length", length)
        us.set("MaximumLength", length + 2)
        us.set("Buffer", buffer)
        return self._put(out, bytes(us.data))

    def _attributes(self, out: Arguments, name: str) -> int:
        oa = self.m.struct("_OBJECT_ATTRIBUTES")
        oa.set("Length", len(oa))
        oa.set("ObjectName", self._unicode(out, name))
        oa.set("Attributes", 0x40)  # OBJ_CASE_INSENSITIVE
        return self._put(out, bytes(oa.data))

    def _iosb(self, out: Arguments) -> int:
        return self._put(out, bytes(self.m.size("_IO_STATUS_BLOCK")))

    def _handle(self, out: Arguments, kind: str, name: str, access: int) -> int:
        value = self.next_handle()
        out.handles.append(HandlePlan(value, kind, name, access))
        return value

    def _required(self, args: dict, key: str, syscall: str) -> str:
        if key not in args:
            raise ArgumentError(f"{syscall} needs `{key}`")
        return str(args[key])

    # ---- the calls ---------------------------------------------------------------------

    def _NtCreateFile(self, args: dict, out: Arguments) -> None:
        path = self._required(args, "path", "NtCreateFile")
        disposition = {"create": 2, "open": 1, "overwrite_if": 5, "open_if": 3}.get(args.get("disposition", "create"))
        if disposition is None:
            raise ArgumentError("NtCreateFile disposition is one of create, open, open_if, overwrite_if")
        out.values = [self._put(out, bytes(8)), 0x40110080, self._attributes(out, nt_path(path)), self._iosb(out),
                      0, 0x80, 0x1, disposition, 0x60, 0, 0]

    def _NtOpenFile(self, args: dict, out: Arguments) -> None:
        path = self._required(args, "path", "NtOpenFile")
        out.values = [self._put(out, bytes(8)), 0x100021, self._attributes(out, nt_path(path)), self._iosb(out),
                      0x5, 0x60]

    def _NtWriteFile(self, args: dict, out: Arguments) -> None:
        path = self._required(args, "path", "NtWriteFile")
        if "data" in args:
            data = bytes.fromhex("".join(str(args["data"]).split()))
        else:
            data = str(args.get("text", "")).encode("utf-8")
        handle = self._handle(out, "file", volume_path(path), 0x120196)
        out.values = [handle, 0, 0, 0, self._iosb(out), self._put(out, data), len(data), self._put(out, bytes(8)), 0]

    def _NtReadFile(self, args: dict, out: Arguments) -> None:
        path = self._required(args, "path", "NtReadFile")
        handle = self._handle(out, "file", volume_path(path), 0x120089)
        out.values = [handle, 0, 0, 0, self._iosb(out), self._put(out, bytes(0x200)), 0x200, 0, 0]

    def _NtSetInformationFile(self, args: dict, out: Arguments) -> None:
        path = self._required(args, "path", "NtSetInformationFile")
        new = nt_path(self._required(args, "new_path", "NtSetInformationFile"))
        handle = self._handle(out, "file", volume_path(path), 0x110080)
        info = self.m.struct("_FILE_RENAME_INFORMATION")
        name = new.encode("utf-16-le")
        info.set("FileNameLength", len(name))
        raw = bytearray(info.data[: info.offset("FileName")]) + name + b"\0\0"
        out.values = [handle, self._iosb(out), self._put(out, bytes(raw)), len(raw), 10]  # FileRenameInformation

    def _NtSetValueKey(self, args: dict, out: Arguments) -> None:
        key = registry_nt_path(self._required(args, "key", "NtSetValueKey"))
        value = str(args.get("value", ""))
        kind = str(args.get("type", "REG_SZ")).upper()
        if kind not in REG_TYPES:
            raise ArgumentError(f"registry type {kind!r} is not one of {', '.join(REG_TYPES)}")
        data = _registry_data(kind, args.get("data", ""))
        handle = self._handle(out, "key", key, 0x20006)
        out.values = [handle, self._unicode(out, value), 0, REG_TYPES[kind], self._put(out, data), len(data)]

    def _NtCreateKey(self, args: dict, out: Arguments) -> None:
        key = registry_nt_path(self._required(args, "key", "NtCreateKey"))
        out.values = [self._put(out, bytes(8)), 0xF003F, self._attributes(out, key), 0, 0, 0, self._put(out, bytes(8))]

    def _NtCreateUserProcess(self, args: dict, out: Arguments) -> None:
        image = self._required(args, "image", "NtCreateUserProcess")
        command_line = str(args.get("command_line", image))
        params = self.m.struct("_RTL_USER_PROCESS_PARAMETERS")
        params.set("MaximumLength", len(params))
        params.set("Length", len(params))
        params.set_if("Flags", 0x1)  # normalized
        for field_name, text in (("ImagePathName", nt_path(image)), ("CommandLine", command_line),
                                 ("CurrentDirectory.DosPath", "C:\\Windows\\system32\\")):
            buffer = self._put(out, utf16z(text))
            set_unicode(params, field_name, text, buffer)
        attribute_list = self._attribute_list(out, nt_path(image))
        out.values = [self._put(out, bytes(8)), self._put(out, bytes(8)), 0x2000000, 0x2000000, 0, 0, 0x200, 0x1,
                      self._put(out, bytes(params.data)), self._put(out, bytes(0x58)), attribute_list]

    def _attribute_list(self, out: Arguments, image: str) -> int:
        name = utf16z(image)
        buffer = self._put(out, name)
        attribute = self.m.struct("_PS_ATTRIBUTE")
        attribute.set("Attribute", PS_ATTRIBUTE_IMAGE_NAME)
        attribute.set("Size", len(name) - 2)
        attribute.set("Value", buffer)
        header = self.m.struct("_PS_ATTRIBUTE_LIST")
        total = header.offset("Attributes") + len(attribute)
        header.set("TotalLength", total)
        raw = bytearray(header.data[: header.offset("Attributes")]) + attribute.data
        return self._put(out, bytes(raw))

    def _NtProtectVirtualMemory(self, args: dict, out: Arguments) -> None:
        """VirtualProtect on the process itself: (-1, &BaseAddress, &RegionSize, NewProtect, &OldProtect)."""
        base = int(self._required(args, "address", "NtProtectVirtualMemory"), 0)
        size = int(args.get("size", 0x1000))
        out.values = [CURRENT_PROCESS, self._put(out, struct.pack("<Q", base)), self._put(out, struct.pack("<Q", size)),
                      _page_protection(args, "NtProtectVirtualMemory"), self._put(out, bytes(4))]

    def _NtAllocateVirtualMemory(self, args: dict, out: Arguments) -> None:
        """VirtualAlloc in the process itself: (-1, &BaseAddress, ZeroBits, &RegionSize, MEM_COMMIT|MEM_RESERVE, Protect)."""
        base = int(str(args.get("address", 0)), 0)
        size = int(args.get("size", 0x1000))
        out.values = [CURRENT_PROCESS, self._put(out, struct.pack("<Q", base)), 0,
                      self._put(out, struct.pack("<Q", size)), MEM_COMMIT_RESERVE,
                      _page_protection(args, "NtAllocateVirtualMemory")]

    def _NtMapViewOfSection(self, args: dict, out: Arguments) -> None:
        path = self._required(args, "path", "NtMapViewOfSection")
        self._handle(out, "file", volume_path(path), 0x100021)   # LdrpMapDllNtFileName opened the file...
        section = self._handle(out, "section", volume_path(path), 0xF001F)  # ...and made an image section of it
        base = int(args.get("base", 0))
        size = int(args.get("size", 0))
        out.values = [section, 0xFFFFFFFFFFFFFFFF, self._put(out, struct.pack("<Q", base)), 0, 0,
                      self._put(out, bytes(8)), self._put(out, struct.pack("<Q", size)), 1, 0x800000, 0x80]


def _page_protection(args: dict, syscall: str) -> int:
    name = str(args.get("protection", "RW-"))
    if name not in PAGE_PROTECTIONS:
        raise ArgumentError(f"{syscall}: protection {name!r} is not one of {', '.join(PAGE_PROTECTIONS)}")
    return PAGE_PROTECTIONS[name]


def _registry_data(kind: str, value) -> bytes:
    if kind in ("REG_SZ", "REG_EXPAND_SZ"):
        return utf16z(str(value))
    if kind == "REG_MULTI_SZ":
        items = value if isinstance(value, list) else [value]
        return b"".join(utf16z(str(v)) for v in items) + b"\0\0"
    if kind == "REG_DWORD":
        return struct.pack("<I", int(value))
    if kind == "REG_QWORD":
        return struct.pack("<Q", int(value))
    return bytes.fromhex("".join(str(value).split()))
