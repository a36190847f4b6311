"""User-mode process structures: PEB, process parameters, loader lists, TEBs, and their WOW64 twins.

These live in the process's own address space. Their layouts are a fixed ABI
(ntdll reads them at fixed offsets), but they are still written through the
symbol table like everything else; the 32-bit ones come from the forge's ABI
definitions when the kernel table lacks them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .layout import StructBuffer
from .machine import Machine, set_unicode, utf16z
from .paging import AddressSpace, PageFlags
from .plan import LoadedModule, ProcessPlan, ThreadPlan

USER_RW = PageFlags(user=True, writable=True, dirty=True)
LDR32_STRIDE = 0x110  # keep +0x100 of every 32-bit entry zero: Volatility's wow64 table reads LoadTime there


@dataclass
class UserArena:
    """A bump allocator over one committed user region (pages mapped as they fill)."""

    space: AddressSpace
    start: int
    end: int
    cursor: int = 0

    def __post_init__(self) -> None:
        self.cursor = self.cursor or self.start

    def alloc(self, size: int, align: int = 16) -> int:
        va = (self.cursor + align - 1) & ~(align - 1)
        if va + size > self.end:
            raise ValueError(f"user arena at {self.start:#x} is full ({self.end - self.start:#x} bytes)")
        self.space.ensure(va, size, USER_RW)
        self.cursor = va + size
        return va

    def put(self, data: bytes, align: int = 16) -> int:
        va = self.alloc(len(data), align)
        self.space.write(va, data)
        return va

    def put_struct(self, buf: StructBuffer, va: int | None = None) -> int:
        va = va if va is not None else self.alloc(len(buf))
        self.space.write(va, bytes(buf.data))
        return va

    @property
    def used_pages(self) -> int:
        return (self.cursor - self.start + 0xFFF) // 0x1000


def environment_block(env: dict[str, str]) -> bytes:
    return b"".join(f"{k}={v}".encode("utf-16-le") + b"\0\0" for k, v in env.items()) + b"\0\0"


def write_peb(m: Machine, space: AddressSpace, arena: UserArena, plan: ProcessPlan, heap: int) -> None:
    """PEB at ``plan.peb``, its process parameters, loader data and lists."""
    params = _write_parameters(m, arena, plan)
    ldr = _write_loader(m, space, arena, plan.modules, 64)
    peb = m.struct("_PEB")
    peb.set("ImageBaseAddress", plan.modules[0].base if plan.modules else 0)
    peb.set("Ldr", ldr)
    peb.set("ProcessParameters", params)
    peb.set_if("ProcessHeap", heap)
    peb.set_if("NumberOfProcessors", 4)
    peb.set_if("NumberOfHeaps", 1)
    peb.set_if("MaximumNumberOfHeaps", 16)
    v = m.version
    peb.set_if("OSMajorVersion", v.major)
    peb.set_if("OSMinorVersion", v.minor)
    peb.set_if("OSBuildNumber", v.build)
    peb.set_if("OSPlatformId", 2)
    peb.set_if("ImageSubsystem", 2)
    peb.set_if("ImageSubsystemMajorVersion", 6)
    peb.set_if("SessionId", plan.session_id or 0)
    space.ensure(plan.peb, len(peb), USER_RW)
    space.write(plan.peb, bytes(peb.data))


def _write_parameters(m: Machine, arena: UserArena, plan: ProcessPlan) -> int:
    params = m.struct("_RTL_USER_PROCESS_PARAMETERS")
    va = arena.alloc(len(params))
    image = plan.image_path or ""
    cmdline = plan.command_line if plan.command_line is not None else image
    directory = image.rsplit("\\", 1)[0] + "\\" if "\\" in image else "C:\\Windows\\system32\\"
    strings = {
        "ImagePathName": image,
        "CommandLine": cmdline,
        "CurrentDirectory.DosPath": directory,
        "DllPath": "",
        "WindowTitle": image,
        "DesktopInfo": "Winsta0\\Default",
    }
    for path, text in strings.items():
        if params.has(path):
            set_unicode(params, path, text, arena.put(utf16z(text), 2))
    env = environment_block(plan.environment)
    params.set("MaximumLength", len(params))
    params.set("Length", len(params))
    params.set_if("Flags", 0x6001)  # normalized
    params.set_if("Environment", arena.put(env, 16))
    params.set_if("EnvironmentSize", len(env))
    params.set_if("ShowWindowFlags", 1)
    return arena.put_struct(params, va)


def _write_loader(m: Machine, space: AddressSpace, arena: UserArena, modules: list[LoadedModule],
                  bits: int) -> int:
    """PEB_LDR_DATA (64- or 32-bit) and one loader entry per linked module, in all three lists."""
    suffix = "" if bits == 64 else "32"
    ldr = m.struct("_PEB_LDR_DATA" + suffix)
    ldr_va = arena.alloc(len(ldr))
    ldr.set("Length", len(ldr))
    ldr.set("Initialized", 1)
    arena.put_struct(ldr, ldr_va)
    entries = [_write_entry(m, arena, mod, bits) for mod in modules if mod.linked]
    lists = (("InLoadOrderModuleList", "InLoadOrderLinks"),
             ("InMemoryOrderModuleList", "InMemoryOrderLinks"),
             ("InInitializationOrderModuleList", "InInitializationOrderLinks"))
    entry_type = "_LDR_DATA_TABLE_ENTRY" + suffix
    for list_name, link_name in lists:
        chosen = entries if list_name != "InInitializationOrderModuleList" else entries[1:]
        links = [e + m.offset(entry_type, link_name) for e in chosen]
        m.link_list(space, ldr_va + ldr.offset(list_name), links, bits // 8)
    return ldr_va


def _write_entry(m: Machine, arena: UserArena, mod: LoadedModule, bits: int) -> int:
    suffix = "" if bits == 64 else "32"
    entry = m.struct("_LDR_DATA_TABLE_ENTRY" + suffix)
    va = arena.alloc(len(entry) if bits == 64 else LDR32_STRIDE)
    name = mod.path.rsplit("\\", 1)[-1]
    entry.set("DllBase", mod.base)
    entry.set("EntryPoint", mod.entry_point)
    entry.set("SizeOfImage", mod.size)
    set_unicode(entry, "FullDllName", mod.path, arena.put(utf16z(mod.path), 2))
    set_unicode(entry, "BaseDllName", name, arena.put(utf16z(name), 2))
    entry.set_if("ObsoleteLoadCount", 0xFFFF if bits == 64 else 6)
    entry.set_if("LoadCount", 0xFFFF)
    entry.set_if("TimeDateStamp", mod.timestamp)
    entry.set_if("Flags", 0x000CC2CC if mod.entry_point else 0x000822CC)
    entry.set_if("SigningLevel", mod.signing_level)
    if bits == 64:
        entry.set_if("LoadTime.QuadPart", mod.load_time)
        entry.set_if("OriginalBase", mod.base)
        entry.set_if("ReferenceCount", 1)
    return arena.put_struct(entry, va)


# ---- WOW64 ------------------------------------------------------------------------


def write_peb32(m: Machine, space: AddressSpace, arena: UserArena, plan: ProcessPlan, heap32: int) -> None:
    """The 32-bit PEB of a WOW64 process, with 32-bit parameters and loader lists."""
    params = m.struct("_RTL_USER_PROCESS_PARAMETERS32")
    params_va = arena.alloc(len(params))
    image = plan.image_path or ""
    for path, text in (("ImagePathName", image), ("CommandLine", plan.command_line or image)):
        set_unicode(params, path, text, arena.put(utf16z(text), 2))
    params.set("MaximumLength", len(params))
    params.set("Length", len(params))
    arena.put_struct(params, params_va)
    ldr = _write_loader(m, space, arena, plan.modules32, 32)
    peb = m.struct("_PEB32")
    peb.set("ImageBaseAddress", plan.modules32[0].base if plan.modules32 else 0)
    peb.set("Ldr", ldr)
    peb.set("ProcessParameters", params_va)
    peb.set_if("ProcessHeap", heap32)
    peb.set_if("NumberOfProcessors", 4)
    v = m.version
    peb.set_if("OSMajorVersion", v.major)
    peb.set_if("OSMinorVersion", v.minor)
    peb.set_if("OSBuildNumber", v.build)
    space.ensure(plan.peb32, len(peb), USER_RW)
    space.write(plan.peb32, bytes(peb.data))


# ---- TEBs -----------------------------------------------------------------------


HAS_FIBER_DATA = 0x4  # TEB.SameTebFlags: the thread was converted to a fiber


def write_teb(m: Machine, space: AddressSpace, plan: ProcessPlan, thread: ThreadPlan, cpu_area: int) -> None:
    """A thread's TEB; for WOW64 threads also the 32-bit TEB and the CPU area with the 32-bit context."""
    assert thread.teb is not None
    teb = m.struct("_TEB")
    teb.set("NtTib.StackBase", thread.stack_base)
    teb.set("NtTib.StackLimit", thread.stack_limit)
    teb.set("NtTib.Self", thread.teb)
    teb.set("ClientId.UniqueProcess", plan.pid)
    teb.set("ClientId.UniqueThread", thread.tid)
    teb.set("ProcessEnvironmentBlock", plan.peb)
    teb.set_if("DeallocationStack", thread.stack_base - 0x100000)
    if thread.fiber is not None:
        teb.set("NtTib.FiberData", thread.fiber)
        teb.set_if("SameTebFlags", HAS_FIBER_DATA)
    if thread.wow64 is not None:
        teb.set("NtTib.ExceptionList", thread.wow64.teb32)
        teb.set("TlsSlots[1]", cpu_area)
        _write_teb32(m, space, plan, thread)
        _write_cpu_area(m, space, cpu_area, thread)
    space.ensure(thread.teb, len(teb), USER_RW)
    space.write(thread.teb, bytes(teb.data))


def _write_teb32(m: Machine, space: AddressSpace, plan: ProcessPlan, thread: ThreadPlan) -> None:
    wow = thread.wow64
    assert wow is not None
    teb = m.struct("_TEB32")
    teb.set("NtTib.ExceptionList", 0xFFFFFFFF)
    teb.set("NtTib.StackBase", wow.stack_base)
    teb.set("NtTib.StackLimit", wow.stack_limit)
    teb.set("NtTib.Self", wow.teb32)
    teb.set("ClientId.UniqueProcess", plan.pid)
    teb.set("ClientId.UniqueThread", thread.tid)
    teb.set("ProcessEnvironmentBlock", plan.peb32)
    teb.set_if("DeallocationStack", wow.stack_base - 0x100000)
    space.ensure(wow.teb32, len(teb), USER_RW)
    space.write(wow.teb32, bytes(teb.data))


def _write_cpu_area(m: Machine, space: AddressSpace, va: int, thread: ThreadPlan) -> None:
    wow = thread.wow64
    assert wow is not None
    cpu = m.struct("_WOW64_CPURESERVED")
    cpu.set("Machine", 0x14C)
    cpu.set("Context.ContextFlags", 0x1003F)
    cpu.set("Context.Eip", wow.eip)
    cpu.set("Context.Esp", wow.esp)
    cpu.set("Context.Ebp", wow.ebp)
    cpu.set("Context.SegCs", 0x23)
    cpu.set("Context.SegSs", 0x2B)
    cpu.set("Context.SegDs", 0x2B)
    cpu.set("Context.SegEs", 0x2B)
    cpu.set("Context.SegFs", 0x53)
    cpu.set("Context.EFlags", 0x246)
    space.ensure(va, len(cpu), USER_RW)
    space.write(va, bytes(cpu.data))
