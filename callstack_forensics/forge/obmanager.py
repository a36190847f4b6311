"""The object manager's view: object types, named objects, and per-process handle tables.

Volatility's ``windows.handles`` (and the event builder, to name the file or
key a blocked system call acts on) resolves a handle through the process's
``_HANDLE_TABLE`` to an ``_OBJECT_HEADER``, decodes its type index with
``ObHeaderCookie`` through ``ObTypeIndexTable``, and names it through the
header's name info, the file object's device and name, or the key's chain of
key control blocks. All of that is written here, by name through the table.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .machine import OB_HEADER_COOKIE, Machine, set_unicode, utf16z
from .paging import KERNEL_DATA

# Our object type indices (the table is ours to write; real builds number them similarly).
OBJECT_TYPES = [
    "", "", "Type", "Directory", "SymbolicLink", "Token", "Job", "Process", "Thread", "Partition", "UserApcReserve",
    "IoCompletionReserve", "ActivityReference", "PsSiloContextPaged", "PsSiloContextNonPaged", "DebugObject",
    "Event", "Mutant", "Callback", "Semaphore", "Timer", "IRTimer", "Profile", "KeyedEvent", "WindowStation",
    "Desktop", "Composition", "RawInputManager", "CoreMessaging", "ActivationObject", "TpWorkerFactory", "Adapter",
    "Controller", "Device", "Driver", "IoCompletion", "WaitCompletionPacket", "File", "TmTm", "TmTx", "TmRm",
    "TmEn", "Section", "Session", "Key", "RegistryTransaction", "ALPC Port", "EnergyTracker", "PowerRequest",
    "WmiGuid", "EtwRegistration", "EtwSessionDemuxEntry", "EtwConsumer", "DmaAdapter", "PcwObject", "FilterConnectionPort",
    "FilterCommunicationPort", "NdisCmState", "DxgkSharedResource", "DxgkSharedSyncObject", "VRegConfigurationContext",
]
NAME_INFO_BIT = 0x2
OPTIONAL_HEADER_SIZES = {0x1: 0x20, 0x2: 0x20, 0x4: 0x10, 0x8: 0x20, 0x10: 0x10, 0x20: 0x10, 0x40: 0x08, 0x80: 0x08}
CM_KEY_BODY_TYPE = 0x6B793032  # 'ky02'
FILE_OBJECT_TYPE = 5
DEVICE_OBJECT_TYPE = 3


@dataclass
class ObjectManager:
    """Creates typed (and optionally named) kernel objects and handle tables."""

    m: Machine
    _types_written: bool = False
    _kcbs: dict[str, int] = field(default_factory=dict)
    _devices: dict[str, int] = field(default_factory=dict)

    # ---- types ----------------------------------------------------------------

    def type_index(self, name: str) -> int:
        return OBJECT_TYPES.index(name)

    def encoded_type(self, header_va: int, name: str) -> int:
        index = self.type_index(name)
        if self.m.layout.has_symbol("ObHeaderCookie"):
            return index ^ OB_HEADER_COOKIE ^ ((header_va >> 8) & 0xFF)
        return index

    def write_types(self) -> None:
        """ObTypeIndexTable (one _OBJECT_TYPE per index) and ObpInfoMaskToOffset."""
        if self._types_written:
            return
        self._types_written = True
        m = self.m
        if m.layout.has_symbol("ObTypeIndexTable") and m.layout.has_type("_OBJECT_TYPE"):
            pointers = [0, 0xBAD0B0B0]
            for index, name in enumerate(OBJECT_TYPES[2:], start=2):
                obj = m.struct("_OBJECT_TYPE")
                va = self.new_object("Type", len(obj) + 2 * len(name) + 2, b"ObjT", name=name)
                set_unicode(obj, "Name", name, va + len(obj))
                obj.set_if("Index", index)
                obj.set_if("TotalNumberOfObjects", 1)
                m.kput(va, obj)
                m.kwrite(va + len(obj), utf16z(name))
                pointers.append(va)
            table = m.symbol_va("ObTypeIndexTable")
            m.system_space.ensure(table, 8 * (len(pointers) + 1), KERNEL_DATA)
            m.kwrite(table, struct.pack(f"<{len(pointers) + 1}Q", *pointers, 0))
        if m.layout.has_symbol("ObpInfoMaskToOffset"):
            offsets = bytes(sum(size for bit, size in OPTIONAL_HEADER_SIZES.items() if mask & bit) & 0xFF
                            for mask in range(256))
            va = m.symbol_va("ObpInfoMaskToOffset")
            m.system_space.ensure(va, 256, KERNEL_DATA)
            m.kwrite(va, offsets)

    # ---- objects ----------------------------------------------------------------

    def new_object(self, type_name: str, size: int, tag: bytes, name: str | None = None) -> int:
        """Allocate an object of ``type_name`` (its header's TypeIndex encoded as this build does)."""
        m = self.m
        name_size = m.size("_OBJECT_HEADER_NAME_INFO") if name is not None and m.layout.has_type(
            "_OBJECT_HEADER_NAME_INFO") else 0
        text = utf16z(name) if name_size else b""
        body = m.pool.alloc(size + len(text), tag, object_header=True, name_info=name_size)
        header = m.pool.header_of(body)
        type_offset = m.offset("_OBJECT_HEADER", "TypeIndex") if m.has_field("_OBJECT_HEADER", "TypeIndex") else None
        if type_offset is not None:
            m.kwrite(header + type_offset, bytes([self.encoded_type(header, type_name) & 0xFF]))
        if name_size:
            info = m.struct("_OBJECT_HEADER_NAME_INFO")
            set_unicode(info, "Name", name or "", body + size)
            info.set_if("ReferenceCount", 1)
            m.kput(header - name_size, info)
            m.kwrite(body + size, text)
        return body

    def device(self, name: str) -> int:
        """A named device object (``HarddiskVolume3``): file objects name their volume through it."""
        if name not in self._devices:
            dev = self.m.struct("_DEVICE_OBJECT")
            va = self.new_object("Device", len(dev), b"Devi", name=name)
            dev.set("Type", DEVICE_OBJECT_TYPE)
            dev.set_if("Size", len(dev))
            dev.set_if("ReferenceCount", 1)
            dev.set_if("DeviceType", 7)  # FILE_DEVICE_DISK
            self.m.kput(va, dev)
            self._devices[name] = va
        return self._devices[name]

    def file(self, nt_path: str, device: str = "HarddiskVolume3", read_only: bool = True) -> int:
        m = self.m
        fo = m.struct("_FILE_OBJECT")
        va = self.new_object("File", len(fo) + 2 * len(nt_path) + 2, b"File")
        fo.set("Type", FILE_OBJECT_TYPE)
        fo.set_if("Size", len(fo))
        fo.set_if("DeviceObject", self.device(device))
        fo.set_if("ReadAccess", 1)
        fo.set_if("WriteAccess", 0 if read_only else 1)
        fo.set_if("SharedRead", 1)
        set_unicode(fo, "FileName", nt_path, va + len(fo))
        m.kput(va, fo)
        m.kwrite(va + len(fo), utf16z(nt_path))
        return va

    def key(self, registry_path: str) -> int:
        """A key object (_CM_KEY_BODY) for ``\\REGISTRY\\MACHINE\\...``; its control blocks chain to the root."""
        m = self.m
        body = m.struct("_CM_KEY_BODY")
        va = self.new_object("Key", len(body), b"CmKb")
        body.set("Type", CM_KEY_BODY_TYPE)
        body.set("KeyControlBlock", self._kcb(registry_path.strip("\\")))
        m.kput(va, body)
        return va

    def _kcb(self, path: str) -> int:
        if path in self._kcbs:
            return self._kcbs[path]
        m = self.m
        parent_path, _, leaf = path.rpartition("\\")
        parent = self._kcb(parent_path) if parent_path else 0
        name = m.struct("_CM_NAME_CONTROL_BLOCK")
        raw = leaf.encode("ascii", "replace")
        name_va = m.pool.alloc(len(name) + len(raw), b"CMNb")
        name.set_if("Compressed", 1)
        name.set_if("RefCount", 1)
        name.set("NameLength", len(raw))
        offset = name.offset("Name")
        m.kput(name_va, name)
        m.kwrite(name_va + offset, raw)
        kcb = m.struct("_CM_KEY_CONTROL_BLOCK")
        kcb_va = m.pool.alloc(len(kcb), b"CMkb")
        kcb.set("RefCount", 1)
        kcb.set("ParentKcb", parent)
        kcb.set("NameBlock", name_va)
        m.kput(kcb_va, kcb)
        self._kcbs[path] = kcb_va
        return kcb_va

    def section(self, control_area: int) -> int:
        """A section object backed by ``control_area`` (an image being mapped)."""
        m = self.m
        if m.layout.has_type("_SECTION") and m.has_field("_SECTION", "u1.ControlArea"):
            section = m.struct("_SECTION")
            va = self.new_object("Section", len(section), b"MmSt")
            section.set("u1.ControlArea", control_area)
            m.kput(va, section)
            return va
        obj = m.struct("_SECTION_OBJECT")
        va = self.new_object("Section", len(obj), b"MmSt")
        segment = m.struct("_SEGMENT_OBJECT")
        segment_va = m.pool.alloc(len(segment), b"MmSg")
        segment.set("ControlArea", control_area)
        m.kput(segment_va, segment)
        obj.set("Segment", segment_va)
        m.kput(va, obj)
        return va

    # ---- handle tables ---------------------------------------------------------------

    def handle_table_code(self, entries: dict[int, tuple[int, int]]) -> int:
        """A one-level handle table page: {handle value: (object body, granted access)}; returns TableCode."""
        m = self.m
        entry_size = m.size("_HANDLE_TABLE_ENTRY")
        base = m.pool.alloc_page()
        for value, (body, access) in entries.items():
            index = value // 4
            if value % 4 or not 0 < index < 0x1000 // entry_size:
                raise ValueError(f"handle {value:#x} does not fit in a one-level handle table")
            entry = m.struct("_HANDLE_TABLE_ENTRY")
            header = m.pool.header_of(body)
            if entry.has("ObjectPointerBits"):
                entry.set("Unlocked", 1)
                entry.set_if("RefCnt", 1)
                entry.set("ObjectPointerBits", (header >> 4) & ((1 << 44) - 1))
                entry.set("GrantedAccessBits", access)
            else:
                entry.set("Object", header | 0x1)
                entry.set("GrantedAccess", access)
            m.kput(base + index * entry_size, entry)
        return base


def registry_nt_path(path: str) -> str:
    """``HKLM\\Software\\...`` -> ``\\REGISTRY\\MACHINE\\Software\\...`` (HKCU is the user's HKEY_USERS entry)."""
    roots = {"HKLM": "MACHINE", "HKEY_LOCAL_MACHINE": "MACHINE", "HKU": "USER", "HKEY_USERS": "USER",
             "HKCR": "MACHINE\\SOFTWARE\\Classes", "HKEY_CLASSES_ROOT": "MACHINE\\SOFTWARE\\Classes"}
    head, _, rest = path.partition("\\")
    if head.upper() == "\\REGISTRY" or path.upper().startswith("\\REGISTRY\\"):
        return path
    if head.upper() not in roots:
        raise ValueError(f"registry path {path!r} must start with HKLM, HKU, HKCR or \\REGISTRY")
    return f"\\REGISTRY\\{roots[head.upper()]}\\{rest}" if rest else f"\\REGISTRY\\{roots[head.upper()]}"
