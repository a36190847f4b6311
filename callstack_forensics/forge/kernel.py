"""The kernel image in memory and the kernel globals readers look up.

Readers find the kernel as on real hardware: the processor start block below 1 MiB gives the
page-table root and the kernel entry point; scanning back from the entry they find ``MZ``, the
``POOLCODE`` section, the export directory naming ``ntoskrnl.exe`` and the CodeView ``RSDS``
record naming ``ntkrnlmp.pdb`` with the symbol table's GUID and age (Volatility also still finds
the unencoded debugger data block, tag ``KDBG``). The image is mapped whole with 2 MiB pages, as
Windows maps ntoskrnl; every global is placed at ``kernel base + symbol address`` from the table.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .kernel_image import IMAGE_FILE_MACHINE_AMD64, KernelImage, build_kernel_image
from .lowstub import write_low_stub
from .machine import KUSER_KERNEL, OB_HEADER_COOKIE, Machine, set_unicode, utf16z
from .paging import KERNEL_DATA, LARGE_PAGE, PageFlags
from .physmem import PAGE
from .system_space import map_system_regions

KERNEL_LARGE_PAGES = PageFlags(user=False, writable=True, executable=True, dirty=True)
KERNEL_PHYSICAL = 0x2000000  # where the loader put ntoskrnl: 2 MiB aligned, above the low fixed frames
KDBG_TAG = 0x4742444B  # "KDBG"

# MM_* protection index -> PAGE_* value: base protections, then NOCACHE, GUARD, WRITECOMBINE variants.
_BASE_PROTECT = [0x01, 0x02, 0x10, 0x20, 0x04, 0x08, 0x40, 0x80]
_MODIFIERS = [0, 0x200, 0x100, 0x400]

# KiSystemCall64's first instructions: swapgs; mov gs:[10h], rsp; mov rsp, gs:[1A8h]
_SYSCALL_ENTRY = bytes.fromhex("0f01f8" "654889242510000000" "65488b2425a8010000")


@dataclass(frozen=True, slots=True)
class KernelGlobals:
    """Addresses other writers need once the kernel is in place."""

    kuser_pfn: int
    process_head: int
    module_head: int
    image: KernelImage


def protect_to_value() -> list[int]:
    table = []
    for modifier in _MODIFIERS:
        for index, value in enumerate(_BASE_PROTECT):
            table.append(_BASE_PROTECT[0] if index == 0 else value | modifier)
    return table


def write_kernel(m: Machine, processors: int, system_time: int) -> KernelGlobals:
    """Write the kernel image, the start block and every global that does not depend on processes."""
    image = _write_image(m)
    write_low_stub(m.phys, m.system_space.dtb, m.kernel_base + image.entry_rva)
    map_system_regions(m)
    kuser_pfn = _write_kuser(m, processors, system_time)
    _write_scalars(m, processors)
    process_head = m.symbol_va("PsActiveProcessHead")
    module_head = m.symbol_va("PsLoadedModuleList")
    _ensure(m, process_head, 16)
    m.link_list(m.system_space, process_head, [])
    _write_loaded_modules(m, module_head, image.size)
    _write_debugger_blocks(m)
    return KernelGlobals(kuser_pfn, process_head, module_head, image)


# ---- image ------------------------------------------------------------------


def _ensure(m: Machine, va: int, size: int, flags: PageFlags = KERNEL_DATA) -> None:
    m.system_space.ensure(va, size, flags)


def _write_image(m: Machine) -> KernelImage:
    """Map the whole image with large pages over one physical run and write its headers, exports and
    the system-call entry's first instructions (every other byte of it reads as zero)."""
    base = m.kernel_base
    image = build_kernel_image(m.layout, m.version, base)
    span = (image.size + LARGE_PAGE - 1) // LARGE_PAGE * LARGE_PAGE
    run = m.phys.claim_run(KERNEL_PHYSICAL // PAGE, span // PAGE)
    for offset in range(0, span, LARGE_PAGE):
        m.system_space.map_large(base + offset, run.start + offset // PAGE, KERNEL_LARGE_PAGES)
    m.kwrite(base, image.headers)
    m.kwrite(base + image.exports_rva, image.exports)
    entry = m.symbol_va("KiSystemCall64") if m.layout.has_symbol("KiSystemCall64") else base + 0x2000
    m.kwrite(entry, _SYSCALL_ENTRY)
    return image


# ---- globals ------------------------------------------------------------------


def _write_kuser(m: Machine, processors: int, system_time: int) -> int:
    v = m.version
    kuser = m.struct("_KUSER_SHARED_DATA")
    kuser.set("TickCountMultiplier", 0x0FA00000)
    for path in ("SystemTime", "InterruptTime"):
        value = system_time if path == "SystemTime" else 0x0000001234567800
        kuser.set(f"{path}.LowPart", value & 0xFFFFFFFF)
        kuser.set(f"{path}.High1Time", value >> 32)
        kuser.set(f"{path}.High2Time", value >> 32)
    kuser.set_if("ImageNumberLow", IMAGE_FILE_MACHINE_AMD64)
    kuser.set_if("ImageNumberHigh", IMAGE_FILE_MACHINE_AMD64)
    kuser.set_bytes("NtSystemRoot", utf16z("C:\\Windows"))
    kuser.set_if("NtBuildNumber", v.build)
    product = "NtProductServer" if v.server else "NtProductWinNt"
    kuser.set("NtProductType", m.layout.enum_value("_NT_PRODUCT_TYPE", product))
    kuser.set("ProductTypeIsValid", 1)
    kuser.set_if("NativeProcessorArchitecture", 9)
    kuser.set("NtMajorVersion", v.major)
    kuser.set("NtMinorVersion", v.minor)
    kuser.set_if("NumberOfPhysicalPages", m.phys.limit // PAGE)
    kuser.set_if("ActiveProcessorCount", processors)
    kuser.set_if("Cookie", 0x5F3C1A2B)
    pfn = m.phys.alloc()
    m.system_space.map_page(KUSER_KERNEL, pfn, KERNEL_DATA)
    m.kwrite(KUSER_KERNEL, bytes(kuser.data))
    return pfn


def _put_symbol(m: Machine, name: str, data: bytes) -> None:
    if not m.layout.has_symbol(name):
        return
    va = m.symbol_va(name)
    _ensure(m, va, len(data))
    m.kwrite(va, data)


def _write_scalars(m: Machine, processors: int) -> None:
    v = m.version
    _put_symbol(m, "KeNumberProcessors", struct.pack("<I", processors))
    _put_symbol(m, "ObHeaderCookie", struct.pack("<B", OB_HEADER_COOKIE))
    _put_symbol(m, "NtBuildNumber", struct.pack("<I", 0xF0000000 | v.build))
    _put_symbol(m, "CmNtCSDVersion", struct.pack("<I", v.csd << 8))
    _put_symbol(m, "MmHighestUserAddress", struct.pack("<Q", 0x7FFFFFFEFFFF))
    _put_symbol(m, "MmSystemRangeStart", struct.pack("<Q", 0xFFFF800000000000))
    _put_symbol(m, "MmUserProbeAddress", struct.pack("<Q", 0x7FFFFFFF0000))
    _put_symbol(m, "MmProtectToValue", struct.pack("<32i", *protect_to_value()))
    _put_symbol(m, "NtBuildLab", v.build_lab.encode() + b"\0")
    _put_symbol(m, "NtBuildLabEx", v.build_lab.encode() + b"\0")


def _write_loaded_modules(m: Machine, head: int, size: int) -> None:
    """PsLoadedModuleList with the kernel itself and the HAL."""
    _ensure(m, head, 16)
    modules = [("ntoskrnl.exe", m.kernel_base, size), ("hal.dll", m.kernel_base - 0x800000, 0x67000)]
    links = []
    for name, base, image_size in modules:
        full = f"\\SystemRoot\\system32\\{name}"
        entry = m.struct("_LDR_DATA_TABLE_ENTRY")
        entry_va = m.pool.alloc(len(entry), b"MmLd")
        entry.set("DllBase", base)
        entry.set("SizeOfImage", image_size)
        entry.set_if("EntryPoint", base + 0x1000)
        set_unicode(entry, "FullDllName", full, m.pool.alloc_bytes(utf16z(full), b"MmLn"))
        set_unicode(entry, "BaseDllName", name, m.pool.alloc_bytes(utf16z(name), b"MmLn"))
        entry.set_if("ObsoleteLoadCount", 1)
        m.kput(entry_va, entry)
        links.append(entry_va + entry.offset("InLoadOrderLinks"))
    m.link_list(m.system_space, head, links)


def _write_debugger_blocks(m: Machine) -> None:
    """KdVersionBlock and the (unencoded) KdDebuggerDataBlock that Volatility's automagic finds."""
    v = m.version
    data_list = m.pool.alloc(16, b"KdDl")
    kdbg_va = m.symbol_va("KdDebuggerDataBlock")
    kdbg = m.struct("_KDDEBUGGER_DATA64")
    kdbg.set("Header.OwnerTag", KDBG_TAG)
    kdbg.set("Header.Size", len(kdbg))
    kdbg.set("Header.List.Flink", data_list)
    kdbg.set("Header.List.Blink", data_list)
    kdbg.set("KernBase", m.kernel_base)
    kdbg.set("PsLoadedModuleList", m.symbol_va("PsLoadedModuleList"))
    kdbg.set("PsActiveProcessHead", m.symbol_va("PsActiveProcessHead"))
    kdbg.set("NtBuildLab", m.symbol_va("NtBuildLab"))
    kdbg.set("CmNtCSDVersion", m.symbol_va("CmNtCSDVersion"))
    _ensure(m, kdbg_va, len(kdbg))
    m.kput(kdbg_va, kdbg)
    m.kwrite(data_list, struct.pack("<QQ", kdbg_va, kdbg_va))

    block = m.struct("_DBGKD_GET_VERSION64")
    block.set("MajorVersion", 0xF)
    block.set("MinorVersion", v.build)
    block.set("ProtocolVersion", 6)
    block.set_if("KdSecondaryVersion", 2)
    block.set("Flags", 0x46)  # MP | PTR64 | HAS_DATA_LIST-ish
    block.set("MachineType", IMAGE_FILE_MACHINE_AMD64)
    block.set_if("MaxPacketType", 0x0C)
    block.set_if("MaxStateChange", 3)
    block.set_if("MaxManipulate", 0x31)
    block.set("KernBase", m.kernel_base)
    block.set("PsLoadedModuleList", m.symbol_va("PsLoadedModuleList"))
    block.set("DebuggerDataList", data_list)
    va = m.symbol_va("KdVersionBlock")
    _ensure(m, va, len(block))
    m.kput(va, block)
