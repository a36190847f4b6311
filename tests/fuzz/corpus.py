"""The real material the engine fuzzer mutates, built once per run.

- Processes whose threads have genuine stacks: the forge's stack composer lays them out from the
  sample modules' own unwind data and call sites (the same stacks the forged images carry), in a
  :class:`~tests.engine.synth.SynthProcess`; one x64 process (with an unbacked RWX frame) and one
  WOW64 process (64-bit emulator frames plus a 32-bit EBP chain, one through RWX shellcode).
- Every sample module mapped as the loader maps it, with the offsets of the structures worth
  corrupting (headers, export directory and tables, ``.pdata``, UNWIND_INFO records).
- The UNWIND_INFO records of the x64 modules, byte for byte.
- Wine minidump captures (``tests/wine/build/captures/*/full.dmp``) when they have been built.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import capstone

from callstack_forensics.forge.codespace import CodeRegion, CodeSpace
from callstack_forensics.forge.modules import Catalog, MappedImage, bind_imports, bind_loader_pointers
from callstack_forensics.forge.stacks import StackComposer
from callstack_forensics.forge.stacks32 import StackComposer32
from callstack_forensics.memory import MemoryMissing, Module, ProcessMemory, RegionKind, ThreadInfo, Wow64Context
from callstack_forensics.engine.modules import ImageCache
from callstack_forensics.engine.pe import PeImage, parse_image, section_protection
from tests.engine.synth import SynthProcess

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "tests" / "wine" / "build" / "captures"
PAGE = 0x1000
STACK_SPAN = 0x10000  # mapped below each stack's top: the scan has room, the rest is absent
CPU_AREA = 0x300  # a WOW64 thread's 32-bit context sits at the top of its 64-bit stack

X64_MODULES = ("ntdll.dll", "kernel32.dll", "kernelbase.dll", "user32.dll", "win32u.dll", "rpcrt4.dll",
               "sechost.dll", "explorer.exe")
X64_THREADS: tuple[tuple[str, ...], ...] = (
    ("win32u.dll!NtUserGetMessage", "user32.dll!GetMessageW", "explorer.exe!MessageLoop", "explorer.exe!wWinMain",
     "explorer.exe!wWinMainCRTStartup", "kernel32.dll!BaseThreadInitThunk", "ntdll.dll!RtlUserThreadStart"),
    ("ntdll.dll!NtWaitForSingleObject", "kernelbase.dll!WaitForSingleObjectEx", "explorer.exe!wmain",
     "explorer.exe!wmainCRTStartup", "kernel32.dll!BaseThreadInitThunk", "ntdll.dll!RtlUserThreadStart"),
    ("ntdll.dll!NtWaitForWorkViaWorkerFactory", "ntdll.dll!TppWorkerThread", "kernel32.dll!BaseThreadInitThunk",
     "ntdll.dll!RtlUserThreadStart"),
    ("ntdll.dll!NtDelayExecution", "kernelbase.dll!SleepEx", "kernelbase.dll!Sleep", "explorer.exe!IdleLoop",
     "kernel32.dll!BaseThreadInitThunk", "ntdll.dll!RtlUserThreadStart"),
    ("ntdll.dll!NtAlpcSendWaitReceivePort", "rpcrt4.dll!LrpcReceiveLoop", "rpcrt4.dll!RpcServerListen",
     "explorer.exe!WorkerThread", "kernel32.dll!BaseThreadInitThunk", "ntdll.dll!RtlUserThreadStart"),
    ("ntdll.dll!NtReadFile", "kernelbase.dll!ReadFile", "sechost.dll!ScDispatcherLoop",
     "sechost.dll!StartServiceCtrlDispatcherW", "explorer.exe!WorkerThread", "kernel32.dll!BaseThreadInitThunk",
     "ntdll.dll!RtlUserThreadStart"),
    ("ntdll.dll!NtDelayExecution", "kernelbase.dll!SleepEx", "kernelbase.dll!Sleep", "payload",
     "kernel32.dll!BaseThreadInitThunk", "ntdll.dll!RtlUserThreadStart"),
)
PAYLOAD = 0x20000000
WOW_NATIVE = ("ntdll.dll", "wow64.dll", "wow64win.dll", "wow64cpu.dll")
WOW_X86 = ("legacyapp.exe", "ntdll.dll", "kernel32.dll", "kernelbase.dll", "user32.dll", "win32u.dll")
WOW_THREADS: tuple[tuple[str, ...], ...] = (
    ("win32u.dll!NtUserGetMessage", "user32.dll!GetMessageW", "legacyapp.exe!MessageLoop", "legacyapp.exe!wWinMain",
     "legacyapp.exe!wWinMainCRTStartup", "kernel32.dll!BaseThreadInitThunk", "ntdll.dll!RtlUserThreadStart"),
    ("ntdll.dll!NtDelayExecution", "kernelbase.dll!SleepEx", "kernelbase.dll!Sleep", "payload32",
     "kernel32.dll!BaseThreadInitThunk", "ntdll.dll!RtlUserThreadStart"),
)
PAYLOAD32 = 0x00600000


@dataclass(frozen=True, slots=True)
class StackSpan:
    """Where one thread's stack lies: [low, top) is mapped, ``rsp`` is where the walk starts."""

    low: int
    top: int
    width: int  # 8 for a 64-bit stack, 4 for a 32-bit one


@dataclass(slots=True)
class BaseProcess:
    """A process whose threads' stacks are genuine; the fuzzer corrupts copies of them."""

    memory: ProcessMemory
    threads: list[ThreadInfo]
    stacks: dict[int, list[StackSpan]]  # tid -> its stacks (a WOW64 thread has two)
    return_addresses: list[int]  # every genuine return address of every thread
    code_addresses: list[int]  # starts of the executable sections and regions
    images: ImageCache = field(default_factory=ImageCache)  # parses of the unmutated modules, shared


@dataclass(frozen=True, slots=True)
class ModuleMaterial:
    """One sample module as mapped in memory, with the offsets of what a hostile image corrupts."""

    name: str
    path: str
    base: int
    data: bytes
    timestamp: int
    is_64: bool
    e_lfanew: int
    optional_header: int
    data_directories: int
    section_table: int
    sections: tuple[tuple[int, int, int], ...]  # (rva, size, characteristics)
    export_directory: tuple[int, int]  # (rva, size)
    export_tables: tuple[int, int, int, int, int]  # (functions, names, ordinals, #functions, #names)
    pdata: tuple[int, int]  # (rva, size)
    unwind_rvas: tuple[int, ...]
    call_returns: tuple[int, ...]  # RVAs right after a call in .text (genuine return addresses)

    @property
    def header_fields(self) -> list[tuple[int, int]]:
        """(offset, size) of the header fields a hostile PE sets to odd values."""
        file_header = self.e_lfanew + 4
        opt = self.optional_header
        out = [(0x3C, 4), (file_header + 2, 2), (file_header + 16, 2), (opt, 2), (opt + 56, 4), (opt + 60, 4)]
        out.append((opt + (108 if self.is_64 else 92), 4))  # NumberOfRvaAndSizes
        for index in range(16):
            out += [(self.data_directories + 8 * index, 4), (self.data_directories + 8 * index + 4, 4)]
        for index in range(len(self.sections)):
            entry = self.section_table + 40 * index
            out += [(entry + 8, 4), (entry + 12, 4), (entry + 16, 4), (entry + 20, 4), (entry + 36, 4)]
        return out


@dataclass(slots=True)
class Corpus:
    x64: BaseProcess
    wow64: BaseProcess
    modules: list[ModuleMaterial]
    unwind_records: list[bytes]
    code_chunks: list[bytes]  # .text excerpts (epilogs, calls) for unwinding at random places
    dumps: list[BaseProcess]


def build_corpus(with_dumps: bool = True) -> Corpus:
    catalog = Catalog.load()
    modules = [_material(catalog, arch, name) for arch, name in sorted(catalog.entries)]
    records = [_record(m, rva) for m in modules if m.is_64 for rva in m.unwind_rvas]
    chunks = [m.data[rva - 0x10 : rva + 0x30] for m in modules if m.is_64 for rva in m.call_returns[:40]]
    return Corpus(
        x64=x64_process(catalog),
        wow64=wow64_process(catalog),
        modules=modules,
        unwind_records=records,
        code_chunks=chunks,
        dumps=_dumps() if with_dumps else [],
    )


# ---- processes -------------------------------------------------------------------------


def _map_image(proc: SynthProcess, image: MappedImage) -> None:
    """Each section with its own protection, as a memory image's PTEs show it."""
    data = bytes(image.data)
    first = min((rva for rva, _, _ in image.sections), default=len(data))
    proc.map(image.base, data[:first], "R--", RegionKind.IMAGE, image.path)
    for rva, size, characteristics in image.sections:
        end = min(len(data), (rva + max(size, 1) + PAGE - 1) & ~(PAGE - 1))
        if end > rva:
            proc.map(image.base + rva, data[rva:end], section_protection(characteristics), RegionKind.IMAGE, image.path)
    proc.add_module(Module(image.base, image.size, image.path, image.timestamp))


def _map_stack(proc: SynthProcess, top: int, writes: dict[int, bytes]) -> StackSpan:
    low = top - STACK_SPAN
    buf = bytearray(STACK_SPAN)
    for address, blob in writes.items():
        buf[address - low : address - low + len(blob)] = blob
    proc.map(low, bytes(buf), "RW-", RegionKind.PRIVATE)
    return StackSpan(low, top, 8)


def _code_addresses(images: list[MappedImage], regions: list[CodeRegion]) -> list[int]:
    out = [img.base + rva for img in images for rva, _, ch in img.sections if ch & 0x20000000]
    return out + [r.base for r in regions]


def x64_process(catalog: Catalog) -> BaseProcess:
    images = {name: catalog.map(catalog.get(name)) for name in X64_MODULES}
    for image in images.values():
        bind_imports(image, images)
    bind_loader_pointers(images, {})
    payload = CodeRegion("payload", PAYLOAD, 0x2000, bytearray(), True)
    composer = StackComposer(CodeSpace(images, {"payload": payload}))
    proc = SynthProcess(pid=4321, name="explorer.exe")
    threads, stacks, returns = [], {}, []
    for number, names in enumerate(X64_THREADS):
        top = 0x00200000 + number * 0x00100000
        comp = composer.compose(list(names), top, syscall=0x34)
        span = _map_stack(proc, top, comp.stack)
        tid = 100 + 4 * number
        regs = {"rip": comp.rip, "rsp": comp.rsp, **comp.registers}
        threads.append(ThreadInfo(tid, regs, stack_base=top, stack_limit=span.low))
        stacks[tid] = [span]
        returns += comp.return_addresses[1:]
    for image in images.values():
        _map_image(proc, image)
    proc.map(PAYLOAD, bytes(payload.data) + bytes(payload.size - len(payload.data)), "RWX", RegionKind.PRIVATE)
    for thread in threads:
        proc.add_thread(thread)
    return BaseProcess(proc, threads, stacks, returns, _code_addresses(list(images.values()), [payload]))


def wow64_process(catalog: Catalog) -> BaseProcess:
    native = {name: catalog.map(catalog.get(name)) for name in WOW_NATIVE}
    wow = {name: catalog.map(catalog.get(name, "x86")) for name in WOW_X86}
    for table in (native, wow):
        for image in table.values():
            bind_imports(image, table)
    bind_loader_pointers(native, wow)
    payload = CodeRegion("payload32", PAYLOAD32, 0x2000, bytearray(), True, bits=32)
    composer = StackComposer(CodeSpace(native))
    composer32 = StackComposer32(CodeSpace(wow, {"payload32": payload}, bits=32))
    proc = SynthProcess(pid=6304, name="legacyapp.exe")
    threads, stacks, returns = [], {}, []
    for number, names in enumerate(WOW_THREADS):
        top = 0x7FFE0000 - number * 0x00100000  # the 64-bit stack, high
        top32 = 0x00300000 + number * 0x00100000
        module, _, function = names[0].partition("!")
        head = ([f"win32u.dll!{function}", f"wow64win.dll!wh{function}"] if module == "win32u.dll"
                else [f"ntdll.dll!{function}", f"wow64.dll!wh{function}"])
        native_names = head + ["wow64.dll!Wow64SystemServiceEx", "wow64cpu.dll!BTCpuSimulate",
                               "wow64.dll!RunCpuSimulation", "wow64.dll!Wow64LdrpInitialize",
                               "ntdll.dll!LdrpInitialize", "ntdll.dll!LdrInitializeThunk"]
        if native_names[0].startswith("win32u.dll"):
            native_names[0] = "ntdll.dll!NtWaitForSingleObject"  # no 64-bit win32u here: any ntdll stub
            native_names[1] = "wow64.dll!whNtWaitForSingleObject"
        comp = composer.compose(native_names, top - CPU_AREA, syscall=0x34)
        comp32 = composer32.compose(list(names), top32)
        span = _map_stack(proc, top, comp.stack)
        writes32 = dict(comp32.stack)
        span32 = _map_stack(proc, top32, writes32)
        span32 = StackSpan(span32.low, span32.top, 4)
        tid = 200 + 4 * number
        regs = {"rip": comp.rip, "rsp": comp.rsp, **comp.registers}
        context = Wow64Context(comp32.eip, comp32.esp, comp32.ebp, top32, span32.low)
        threads.append(ThreadInfo(tid, regs, stack_base=top, stack_limit=span.low, wow64=context))
        stacks[tid] = [span, span32]
        returns += comp.return_addresses[1:] + comp32.return_addresses[1:]
    for image in list(native.values()) + list(wow.values()):
        _map_image(proc, image)
    proc.map(PAYLOAD32, bytes(payload.data) + bytes(payload.size - len(payload.data)), "RWX", RegionKind.PRIVATE)
    for thread in threads:
        proc.add_thread(thread)
    all_images = list(native.values()) + list(wow.values())
    return BaseProcess(proc, threads, stacks, returns, _code_addresses(all_images, [payload]))


# ---- modules ---------------------------------------------------------------------------


def _material(catalog: Catalog, arch: str, name: str) -> ModuleMaterial:
    entry = catalog.get(name, arch)
    image = catalog.map(entry)
    data = bytes(image.data)
    pe = parse_image(_reader(data))
    e_lfanew = struct.unpack_from("<I", data, 0x3C)[0]
    opt = e_lfanew + 24
    size_of_opt = struct.unpack_from("<H", data, e_lfanew + 20)[0]
    is_64 = struct.unpack_from("<H", data, opt)[0] == 0x20B
    dirs = opt + (112 if is_64 else 96)
    export = struct.unpack_from("<II", data, dirs)
    tables = (0, 0, 0, 0, 0)
    if export[0] and export[0] + 40 <= len(data):
        d = struct.unpack_from("<IIHHIIIIIII", data, export[0])
        tables = (d[8], d[9], d[10], d[6], d[7])
    pdata = struct.unpack_from("<II", data, dirs + 24) if is_64 else (0, 0)
    unwinds = tuple(sorted({f.unwind for f in pe.runtime_functions}))
    return ModuleMaterial(
        name=name, path=image.path, base=image.base, data=data, timestamp=image.timestamp, is_64=is_64,
        e_lfanew=e_lfanew, optional_header=opt, data_directories=dirs, section_table=opt + size_of_opt,
        sections=tuple(image.sections), export_directory=export, export_tables=tables, pdata=pdata,
        unwind_rvas=unwinds, call_returns=tuple(_call_returns(pe, data, is_64)),
    )


def _reader(data: bytes):
    def read(rva: int, size: int) -> bytes:
        if rva < 0 or rva + size > len(data):
            raise MemoryMissing(rva)
        return data[rva : rva + size]

    return read


def _call_returns(pe: PeImage, data: bytes, is_64: bool) -> list[int]:
    """RVAs that follow a call instruction in the executable sections (linear sweep)."""
    cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64 if is_64 else capstone.CS_MODE_32)
    out = []
    for section in pe.sections:
        if not section.executable:
            continue
        code = data[section.rva : section.rva + section.size]
        for insn in cs.disasm(code, section.rva):
            if insn.mnemonic == "call":
                out.append(insn.address + insn.size)
    return out


def _record(module: ModuleMaterial, rva: int) -> bytes:
    """One UNWIND_INFO record: header, codes, and the chained entry or handler RVA after them."""
    data = module.data
    if rva + 4 > len(data):
        return b""
    count = data[rva + 2]
    flags = data[rva] >> 3
    size = 4 + 2 * (count + (count & 1))
    if flags & 4:
        size += 12
    elif flags & 3:
        size += 4
    return data[rva : rva + size]


def _dumps() -> list[BaseProcess]:
    from callstack_forensics.memory.minidump import MinidumpMemory

    out: list[BaseProcess] = []
    for path in sorted(CAPTURES.glob("*/full.dmp")):
        try:
            memory = MinidumpMemory(path)
        except Exception:  # a capture that is not readable is not material
            continue
        base = dump_process(memory)
        if base.threads:
            out.append(base)
    return out


def dump_process(memory: ProcessMemory) -> BaseProcess:
    """A minidump's threads with user context, their stacks from RSP up (at most STACK_SPAN),
    and the return addresses the engine finds in them (material for pointer swaps)."""
    from callstack_forensics.engine.context import ProcessContext, WalkOptions
    from callstack_forensics.engine.walker import walk_thread

    threads = [t for t in memory.threads() if t.registers and "rip" in t.registers and "rsp" in t.registers]
    stacks: dict[int, list[StackSpan]] = {}
    for thread in threads:
        assert thread.registers is not None
        low = thread.registers["rsp"] & ~(PAGE - 1)
        top = min(thread.stack_base or low + STACK_SPAN, low + STACK_SPAN)
        stacks[thread.tid] = [StackSpan(low, max(top, low + PAGE), 8)]
    base = BaseProcess(memory, threads, stacks, [], [])
    ctx = ProcessContext(memory, WalkOptions(), base.images)
    for thread in threads:
        base.return_addresses += [f.address for f in walk_thread(ctx, thread).frames[1:]]
    base.code_addresses = [m.base + PAGE for m in memory.modules()]
    return base
