"""ntoskrnl.exe as a PE image: headers, named sections, the export directory and the CodeView record.

Readers find the kernel by its PE, not by our say-so: MemProcFS looks for ``MZ`` with a section
named ``POOLCODE`` and an export directory naming ``ntoskrnl.exe``, then resolves
``PsInitialSystemProcess`` (and other globals) through the exports; Volatility looks for the
CodeView ``RSDS`` record naming the PDB. A kernel symbol table says where every global lives but
not how the image is cut into sections, so the cut is derived from the symbols the forge knows
the nature of: code up to the system-call entry, ``POOLCODE`` after it, ``INIT`` (where the entry
point, ``KiSystemStartup``, lives) up to the data, ``.data`` from the debugger data block on, and
the export directory in ``.edata`` after the last symbol.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

from .builds import WindowsVersion
from .layout import Layout
from .physmem import PAGE

IMAGE_FILE_MACHINE_AMD64 = 0x8664
CODE = 0x60000020        # CNT_CODE | MEM_EXECUTE | MEM_READ
CODE_NONPAGED = 0x68000020
INIT_CODE = 0x62000020   # ... | MEM_DISCARDABLE
DATA = 0xC8000040        # CNT_INITIALIZED_DATA | MEM_NOT_PAGED | MEM_READ | MEM_WRITE
READ_ONLY = 0x40000040   # CNT_INITIALIZED_DATA | MEM_READ
DATA_SECTION_MAX = 0x100000  # what readers scanning .data for the KDBG block accept
E_LFANEW = 0x100
OPTIONAL_HEADER_SIZE = 0xF0
DEBUG_RVA, CODEVIEW_RVA = 0x600, 0x620

# Globals and routines ntoskrnl really exports (a subset, each exported only when the table has it).
EXPORTED = (
    "ExAllocatePoolWithTag", "ExFreePoolWithTag", "IoCreateDevice", "IoFileObjectType", "KdDebuggerEnabled",
    "KdDebuggerNotPresent", "KeBugCheckEx", "KeNumberProcessors", "KeServiceDescriptorTable",
    "KeStackAttachProcess", "MmGetSystemRoutineAddress", "MmHighestUserAddress", "MmSystemRangeStart",
    "MmUserProbeAddress", "NtBuildLab", "NtBuildNumber", "NtClose", "ObReferenceObjectByHandle",
    "PsGetCurrentProcessId", "PsInitialSystemProcess", "PsLoadedModuleList", "PsLoadedModuleResource",
    "PsProcessType", "PsThreadType", "ZwClose",
)


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    rva: int
    size: int
    characteristics: int


@dataclass(frozen=True, slots=True)
class KernelImage:
    """Where everything of the image lies, relative to its base, and the bytes of its non-zero parts."""

    size: int
    entry_rva: int
    sections: tuple[Section, ...]
    headers: bytes                  # the first page
    exports_rva: int
    exports: bytes

    def section(self, name: str) -> Section:
        return next(s for s in self.sections if s.name == name)


def build_kernel_image(layout: Layout, version: WindowsVersion, base: int) -> KernelImage:
    """The image of the kernel the layout describes, for loading at ``base``."""
    sections = _sections(layout)
    edata = sections[-1]
    exports = export_directory(layout, edata.rva)
    sections = sections[:-1] + (Section(".edata", edata.rva, len(exports), READ_ONLY),)
    size = _page(edata.rva + len(exports))
    entry = layout.symbol("KiSystemStartup") if layout.has_symbol("KiSystemStartup") else sections[2].rva
    headers = _headers(layout, version, base, size, entry, sections, (edata.rva, len(exports)))
    return KernelImage(size, entry, sections, headers, edata.rva, exports)


def _page(value: int) -> int:
    return (value + PAGE - 1) & ~(PAGE - 1)


def _sections(layout: Layout) -> tuple[Section, ...]:
    """``.text``, ``POOLCODE``, ``INIT``, ``.data``, ``ALMOSTRO`` and a placeholder for ``.edata``."""
    top = _page(max(layout.symbol(n) for n in layout.symbol_names()) + 0x10000)
    kdbg = layout.symbol("KdDebuggerDataBlock") & ~(PAGE - 1)
    syscall = layout.symbol("KiSystemCall64") if layout.has_symbol("KiSystemCall64") else 0x1000
    pool = min(_page(syscall + 0x400), kdbg - 2 * PAGE)
    data_end = min(kdbg + DATA_SECTION_MAX, top)
    cuts = [
        (".text", 0x1000, pool, CODE),
        ("POOLCODE", pool, pool + PAGE, CODE_NONPAGED),
        ("INIT", pool + PAGE, kdbg, INIT_CODE),
        (".data", kdbg, data_end, DATA),
        ("ALMOSTRO", data_end, max(top, data_end + PAGE), DATA),
    ]
    out = tuple(Section(name, start, end - start, flags) for name, start, end, flags in cuts)
    return out + (Section(".edata", out[-1].rva + out[-1].size, 0, READ_ONLY),)


def export_directory(layout: Layout, rva: int) -> bytes:
    """IMAGE_EXPORT_DIRECTORY for ``ntoskrnl.exe`` at ``rva``: names sorted, as loaders binary-search them."""
    names = sorted(n for n in EXPORTED if layout.has_symbol(n))
    count = len(names)
    functions = rva + 0x28
    name_pointers = functions + 4 * count
    ordinals = name_pointers + 4 * count
    strings = ordinals + 2 * count
    module = b"ntoskrnl.exe\0"
    blob = bytearray(module)
    name_rvas = []
    for name in names:
        name_rvas.append(strings + len(blob))
        blob += name.encode() + b"\0"
    head = struct.pack("<IIHHIIIIIII", 0, 0, 0, 0, strings, 1, count, count, functions, name_pointers, ordinals)
    body = struct.pack(f"<{count}I", *(layout.symbol(n) for n in names))
    body += struct.pack(f"<{count}I", *name_rvas) + struct.pack(f"<{count}H", *range(count))
    return head + body + bytes(blob)


def _headers(layout: Layout, v: WindowsVersion, base: int, size: int, entry: int, sections: tuple[Section, ...],
             exports: tuple[int, int]) -> bytes:
    """DOS + PE32+ headers, the section table and a CodeView debug record, in one page."""
    page = bytearray(PAGE)
    struct.pack_into("<2s58xI", page, 0, b"MZ", E_LFANEW)
    page[E_LFANEW : E_LFANEW + 4] = b"PE\0\0"
    timestamp = 0x5E000000 + v.build
    struct.pack_into("<HHIIIHH", page, E_LFANEW + 4, IMAGE_FILE_MACHINE_AMD64, len(sections), timestamp, 0, 0,
                     OPTIONAL_HEADER_SIZE, 0x22)
    opt = E_LFANEW + 0x18
    code = sum(s.size for s in sections if s.characteristics & 0x20)
    struct.pack_into(
        "<HBBIIIIIQIIHHHHHHIIIIHHQQQQII", page, opt,
        0x20B, 14, 20, code, size - code, 0, entry, 0x1000, base, PAGE, 0x200,
        v.major, v.minor, v.major, v.minor, v.major, v.minor, 0, size, PAGE, 0x00A1B2C3, 1, 0x4160,
        0x80000, 0x2000, 0x100000, 0x1000, 0, 16,
    )
    directories = opt + 0x70
    struct.pack_into("<II", page, directories, *exports)                      # DataDirectory[EXPORT]
    struct.pack_into("<II", page, directories + 6 * 8, DEBUG_RVA, 28)         # DataDirectory[DEBUG]
    table = opt + OPTIONAL_HEADER_SIZE
    for i, s in enumerate(sections):
        struct.pack_into("<8sIIIIIIHHI", page, table + 40 * i, s.name.encode(), s.size, s.rva, _page(s.size), s.rva,
                         0, 0, 0, 0, s.characteristics)
    codeview = b"RSDS" + uuid.UUID(hex=layout.guid).bytes_le + struct.pack("<I", layout.age)
    codeview += layout.pdb_name.encode() + b"\0"
    struct.pack_into("<IIHHIIII", page, DEBUG_RVA, 0, timestamp, 0, 0, 2, len(codeview), CODEVIEW_RVA, CODEVIEW_RVA)
    page[CODEVIEW_RVA : CODEVIEW_RVA + len(codeview)] = codeview
    return bytes(page)
