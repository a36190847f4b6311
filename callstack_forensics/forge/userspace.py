"""One process of a scenario -> its plan: modules mapped and bound, regions, PEB/TEBs, stacks, threads.

Addresses are chosen here (modules at their catalog bases unless the scenario
says otherwise; everything else first-fit in free space), call stacks are
composed against the very bytes that will be mapped, and every page the
process needs is listed as a write. A fork clone starts as a copy of its
parent's address space (modules and regions at the same addresses).
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import implants
from .addresses import VaAllocator
from .codespace import CodeRegion, CodeSpace, FrameError
from .host_weight import weight_of
from .modules import Catalog, MappedImage, ModuleError, bind_imports, bind_loader_pointers
from .padding import add_weight
from .plan import LoadedModule, PageWrite, ProcessPlan, ThreadPlan, UserContext, VadPlan, Wow64Context
from .scenario import ProcessSpec, RegionSpec, Scenario, ScenarioError, ThreadSpec
from .stacks import ComposeError, Composition, StackComposer
from .syscall_args import ArgumentBuilder, ArgumentError
from .stacks32 import StackComposer32
from .vad import MM_PROTECTION, nt_file_name

if TYPE_CHECKING:
    from .machine import Machine

PAGE = 0x1000
STACK_RESERVE = 0x100000
HEAP_RESERVE = 0x100000
DATA_RESERVE = 0x10000
CPU_AREA_SPACE = 0x300   # WOW64_CPURESERVED (flags, machine, 32-bit CONTEXT) at the 64-bit stack's top
DEFAULT_MODULES = ("ntdll.dll", "kernel32.dll", "kernelbase.dll")
WOW64_NATIVE = ("ntdll.dll", "wow64.dll", "wow64win.dll", "wow64cpu.dll")
DEFAULT_USER = "S-1-5-21-3623811015-3361044348-30300820-1013"
EPOCH = dt.datetime(1601, 1, 1, tzinfo=dt.timezone.utc)
USER_LIMIT = 0x7FFFFFFE0000
WOW64_LIMIT = 0x7FFE0000


CONTEXT_SIZE = 0x4D0


def _write_into(region: CodeRegion, stack: dict[int, bytes]) -> None:
    """A composed stack's slots into a region's bytes (a stack laid out in that region)."""
    for address, blob in stack.items():
        offset = address - region.base
        if not 0 <= offset <= region.size - len(blob):
            raise ValueError(f"the stack laid out in region '{region.name}' does not fit in it")
        if len(region.data) < offset + len(blob):
            region.data.extend(bytes(offset + len(blob) - len(region.data)))
        region.data[offset : offset + len(blob)] = blob


def filetime(when: dt.datetime) -> int:
    return int((when - EPOCH).total_seconds() * 10_000_000)


@dataclass
class ProcessLayout:
    """The working state of one process while its plan is built."""

    spec: ProcessSpec
    plan: ProcessPlan
    va: VaAllocator
    va32: VaAllocator
    images: dict[str, MappedImage] = field(default_factory=dict)        # x64, by catalog name
    images32: dict[str, MappedImage] = field(default_factory=dict)      # x86 (WOW64)
    regions: dict[str, CodeRegion] = field(default_factory=dict)
    region_specs: dict[str, RegionSpec] = field(default_factory=dict)
    region_arch: dict[str, str] = field(default_factory=dict)
    data_region: tuple[int, bytearray] | None = None   # where system-call argument structures live
    next_handle: int = 0x1A4


class UserSpaceBuilder:
    """Builds the plan of one user process."""

    def __init__(self, scenario: Scenario, catalog: Catalog, specs_by_pid: dict[int, ProcessSpec],
                 machine: "Machine", host_weight: bool = False) -> None:
        self.scenario = scenario
        self.catalog = catalog
        self.specs_by_pid = specs_by_pid
        self.machine = machine
        self.host_weight = host_weight  # bring every process up to a real host's (forge/host_weight.py)
        self.heap_pages: dict[int, bytes] = {}  # the weight's heap pages, one set for the image

    def fail(self, spec: ProcessSpec, message: str) -> ScenarioError:
        return ScenarioError(f"{self.scenario.path.name}: {spec.where}: {message}")

    def build(self, spec: ProcessSpec, index: int) -> ProcessPlan:
        spec = self._inherit(spec)
        created = spec.created or self.scenario.boot + dt.timedelta(seconds=20 + 7 * index)
        if created > self.scenario.time:
            raise self.fail(spec, "is created after the capture time ([system].time)")
        user = spec.user or ("S-1-5-18" if not spec.session else DEFAULT_USER)
        plan = ProcessPlan(pid=spec.pid, ppid=spec.ppid, name=spec.name, image_path=None,
                           command_line=spec.command_line, create_time=filetime(created),
                           session_id=spec.session, user_sid=user, wow64=spec.wow64,
                           clone_of=spec.fork_of, handles=spec.handles or 0)
        plan.forked = any(s.fork_of == spec.pid for s in self.specs_by_pid.values())
        low = 0x10000 if spec.wow64 else 0x10000000 + (spec.pid % 97) * 0x10000000
        allocator = VaAllocator(low, WOW64_LIMIT if spec.wow64 else USER_LIMIT)
        layout = ProcessLayout(spec, plan, allocator, allocator)
        layout.va.reserve(0x7FFE0000, PAGE, "KUSER_SHARED_DATA")
        plan.vads.append(VadPlan(0x7FFE0000, 0x7FFE0FFF, MM_PROTECTION["R--"], True, "private", commit_pages=1,
                                 label="KUSER_SHARED_DATA"))
        try:
            self._map_modules(layout)
            self._regions(layout)
            self._process_area(layout)
            self._threads(layout, created)
            self._contexts(layout)
        except (ModuleError, ComposeError, FrameError, ValueError) as exc:
            raise self.fail(spec, str(exc)) from exc
        self._finish_regions(layout)
        self._finish_data(layout)
        if self.host_weight:
            add_weight(plan, {} if spec.wow64 else layout.images, layout.va.reserve, layout.va.alloc, self.catalog,
                       weight_of(spec.image or spec.name), lambda image: self._loaded(image, {}, plan),
                       self.heap_pages)
        plan.environment = self._environment(spec, user)
        return plan

    # ---- fork clones ----------------------------------------------------------------

    def _inherit(self, spec: ProcessSpec) -> ProcessSpec:
        """A fork clone gets its parent's image, modules and regions unless it names its own."""
        if spec.fork_of is None:
            return spec
        parent = self._inherit(self.specs_by_pid[spec.fork_of])
        from dataclasses import replace

        return replace(
            spec,
            path=spec.path or parent.path,
            image=spec.image or parent.image or parent.name.lower(),
            command_line=spec.command_line if spec.command_line is not None else parent.command_line,
            modules=spec.modules if spec.modules is not None else parent.modules,
            modules32=spec.modules32 if spec.modules32 is not None else parent.modules32,
            module_details=spec.module_details or parent.module_details,
            regions=spec.regions or parent.regions,
            wow64=parent.wow64,
            session=spec.session if spec.session is not None else parent.session,
            user=spec.user or parent.user,
            thread_init=parent.thread_init if spec.thread_init == "kernel32.dll" else spec.thread_init,
            env=spec.env or parent.env,
        )

    # ---- modules --------------------------------------------------------------------------

    def _map_modules(self, layout: ProcessLayout) -> None:
        spec, plan = layout.spec, layout.plan
        exe_arch = "x86" if spec.wow64 else "x64"
        exe_name = (spec.image or spec.name).lower()
        if not self.catalog.has(exe_name, exe_arch):
            raise ModuleError(f"no {exe_arch} executable '{exe_name}' in the module catalog; set `image` to one "
                              "of the catalog's executables")
        details = {(d.arch, d.name.lower()): d for d in spec.module_details}
        native = list(WOW64_NATIVE if spec.wow64 else (spec.modules or DEFAULT_MODULES))
        wow = list(spec.modules32 or DEFAULT_MODULES) if spec.wow64 else []
        for arch, name in details:
            target = native if arch == "x64" else wow
            if name not in target:
                target.append(name)
        exe = self._map(layout, exe_name, exe_arch, details, path=spec.path)
        plan.image_path = exe.path
        if plan.command_line is None:
            plan.command_line = f'"{exe.path}"' if " " in exe.path else exe.path
        native_images = {exe_name: exe} if exe_arch == "x64" else {}
        wow_images = {exe_name: exe} if spec.wow64 else {}
        native = self._with_dependencies(layout, native, native_images, "x64", details)
        wow = self._with_dependencies(layout, wow, wow_images, "x86", details)
        for table in (native_images, wow_images):
            for image in table.values():
                bind_imports(image, table)
        bind_loader_pointers(native_images, wow_images, spec.thread_init.lower())
        layout.images, layout.images32 = native_images, wow_images
        order64 = [exe] + [native_images[n.lower()] for n in native]
        plan.modules = [self._loaded(img, details, plan) for img in order64]
        plan.signature_level = spec.signature_level if spec.signature_level is not None else \
            plan.modules[0].signing_level
        if spec.wow64:
            plan.modules32 = [self._loaded(img, details, plan) for img in [exe] + [wow_images[n.lower()] for n in wow]]
        for image in {id(i): i for i in list(native_images.values()) + list(wow_images.values())}.values():
            detail = details.get((image.entry.arch, image.entry.name.lower()))
            spec = detail.implants if detail else implants.ModuleImplantSpec()
            patched = implants.patch_image(image, spec.patches)
            plan.writes.extend(implants.private_pages(image.page_writes(), image, patched))
            plan.vads.append(implants.mapped_vad(VadPlan(image.base, image.end - 1, MM_PROTECTION["RCX"], False, "image",
                                                         nt_file_name(image.path), commit_pages=0,
                                                         label=image.entry.name), spec, nt_file_name, len(patched)))

    def _with_dependencies(self, layout: ProcessLayout, names: list[str], images: dict[str, MappedImage],
                           arch: str, details: dict) -> list[str]:
        """Map the listed modules and, as the loader would, every module they import (after them)."""
        order: list[str] = []
        queue = [n.lower() for n in names]
        for image in list(images.values()):
            queue += [dll for dll, _, _ in image.imports]
        while queue:
            name = queue.pop(0)
            if name in order or (name in images and name not in [n.lower() for n in names]):
                continue
            if name not in images:
                images[name] = self._map(layout, name, arch, details)
            order.append(name)
            queue += [dll for dll, _, _ in images[name].imports if dll not in order]
        return order

    def _map(self, layout: ProcessLayout, name: str, arch: str, details: dict, path: str | None = None) -> MappedImage:
        entry = self.catalog.get(name, arch)
        detail = details.get((arch, name.lower()))
        base = detail.base if detail and detail.base is not None else entry.base
        image = self.catalog.map(entry, base, path or (detail.path if detail and detail.path else None))
        layout.va.reserve(image.base, image.size, f"module {name}")
        return image

    def _loaded(self, image: MappedImage, details: dict, plan: ProcessPlan) -> LoadedModule:
        detail = details.get((image.entry.arch, image.entry.name.lower()))
        level = detail.signing_level if detail and detail.signing_level is not None else image.entry.signing_level
        return LoadedModule(image.base, image.size, image.base + image.entry_point if image.entry_point else 0,
                            image.path, linked=detail.linked if detail else True, timestamp=image.timestamp,
                            load_time=plan.create_time + 5_000_000, bits=image.entry.bits, signing_level=level,
                            source=image.entry.file)

    # ---- regions -----------------------------------------------------------------------------

    def _regions(self, layout: ProcessLayout) -> None:
        for region in layout.spec.regions:
            allocator = layout.va32 if region.arch == "x86" else layout.va
            if region.address is not None:
                layout.va.reserve(region.address, region.size, f"region {region.name}")
                base = region.address
            else:
                base = allocator.alloc(region.size, f"region {region.name}")
            data = bytearray(self._pe_content(region, base) if region.pe else region.content)
            cursor = max(0x40, (len(data) + 0xF) & ~0xF)
            code = CodeRegion(region.name, base, region.size, data, "X" in region.protection, cursor,
                              32 if region.arch == "x86" else 64)
            if not data and code.executable:
                data.extend(_PREAMBLE[region.arch])
            layout.regions[region.name] = code
            layout.region_specs[region.name] = region

    def _pe_content(self, region: RegionSpec, base: int) -> bytes:
        """A catalog module laid out at the region's base, as a reflective loader maps it."""
        if region.content:
            raise ValueError(f"region '{region.name}': give `content` or `pe`, not both")
        image = self.catalog.map(self.catalog.get(region.pe, region.arch), base)
        return implants.lay_out_pe(image, region.size, region.pe_header)

    def _finish_regions(self, layout: ProcessLayout) -> None:
        """Regions' final bytes (with generated call sites) -> pages and VADs."""
        plan = layout.plan
        for name, code in layout.regions.items():
            spec = layout.region_specs[name]
            data = bytes(code.data)
            pages = [o for o in range(0, spec.size, PAGE) if any(data[o : o + PAGE]) or o == 0]
            paged = set(spec.paged_out)
            writable = "W" in spec.protection or "C" in spec.protection
            for offset in pages:
                if offset in paged:
                    continue
                chunk = data[offset : offset + PAGE]
                plan.writes.append(PageWrite(code.base + offset, chunk + bytes(PAGE - len(chunk)), writable=writable,
                                             executable="X" in spec.protection, dirty=spec.kind == "private"))
            plan.paged_out.extend(code.base + o for o in paged)
            file = nt_file_name(spec.file) if spec.file else None
            plan.vads.append(VadPlan(code.base, code.base + spec.size - 1, MM_PROTECTION[spec.protection],
                                     spec.kind == "private", spec.kind, file,
                                     commit_pages=len([p for p in pages if p not in paged]), label=name))

    # ---- PEB, heap, TEBs -------------------------------------------------------------------

    def _process_area(self, layout: ProcessLayout) -> None:
        plan = layout.plan
        area = layout.va.alloc(0x10000, "PEB")
        plan.peb = area
        # a WOW64 process's 32-bit PEB is the page after its PEB, where Windows puts it (readers look there)
        pages = 2 if plan.wow64 else 1
        plan.vads.append(VadPlan(plan.peb, plan.peb + pages * PAGE - 1, MM_PROTECTION["RW-"], True, "private",
                                 commit_pages=pages, label="PEB"))
        heap = layout.va.alloc(HEAP_RESERVE, "heap")
        plan.arena = (heap, heap + HEAP_RESERVE)
        plan.vads.append(VadPlan(heap, heap + HEAP_RESERVE - 1, MM_PROTECTION["RW-"], True, "private",
                                 commit_pages=16, label="heap"))
        if plan.wow64:
            plan.peb32 = plan.peb + PAGE
            heap32 = layout.va32.alloc(HEAP_RESERVE, "heap32")
            plan.arena32 = (heap32, heap32 + HEAP_RESERVE)
            plan.vads.append(VadPlan(heap32, heap32 + HEAP_RESERVE - 1, MM_PROTECTION["RW-"], True, "private",
                                     commit_pages=16, label="heap32"))

    # ---- threads ------------------------------------------------------------------------------

    def _threads(self, layout: ProcessLayout, created: dt.datetime) -> None:
        space = CodeSpace(layout.images, {n: r for n, r in layout.regions.items() if r.bits == 64})
        space32 = CodeSpace(layout.images32, {n: r for n, r in layout.regions.items() if r.bits == 32}, bits=32)
        composer, composer32 = StackComposer(space), StackComposer32(space32)
        ordinal = 0
        for spec in layout.spec.threads:
            for copy in range(spec.count):
                when = spec.created or created + dt.timedelta(milliseconds=150 * (ordinal + 1))
                if when > self.scenario.time:
                    raise ValueError(f"{spec.where}: created after the capture time")
                layout.plan.threads.append(self._thread(layout, spec, spec.tid + 4 * copy, when, composer,
                                                        composer32, space))
                ordinal += 1

    def _thread(self, layout: ProcessLayout, spec: ThreadSpec, tid: int, when: dt.datetime,
                composer: StackComposer, composer32: StackComposer32, space: CodeSpace) -> ThreadPlan:
        plan = layout.plan
        in_syscall = spec.state == "Waiting"
        ssn = self._syscall_number(layout, spec.syscall)
        wow = bool(spec.stack32)
        if wow and not plan.wow64:
            raise ValueError(f"{spec.where}: `stack32` is only for WOW64 processes")
        teb_size = 0x3000 if wow else 0x2000
        teb = layout.va.alloc(teb_size, "TEB")
        plan.vads.append(VadPlan(teb, teb + teb_size - 1, MM_PROTECTION["RW-"], True, "private",
                                 commit_pages=teb_size // PAGE, label=f"TEB {tid}"))
        stack = layout.va.alloc(STACK_RESERVE, "stack")
        top = stack + STACK_RESERVE
        # a WOW64 thread keeps its CPU area (the 32-bit context) at the top of its 64-bit stack
        compose_top = top - CPU_AREA_SPACE if wow else top
        frames = list(spec.stack) or self._wow64_native_frames(layout, spec)
        moved = self._region_named(layout, spec.stack_in, f"{spec.where}.stack_in") if spec.stack_in else None
        if moved is not None:
            compose_top = moved.base + moved.size - 0x40  # a stack pivoted into (or a fiber run on) a region
        comp = composer.compose(frames, compose_top, syscall=ssn, encoding=spec.encoding, in_syscall=in_syscall)
        if spec.args:
            self._arguments(layout, spec, frames, comp)
        if moved is not None:
            _write_into(moved, comp.stack)
            limit = self._stack_pages(plan, stack, top, {}, tid)
        else:
            limit = self._stack_pages(plan, stack, top, comp.stack, tid)
        thread = ThreadPlan(tid=tid, create_time=filetime(when), state=spec.state, wait_reason=spec.wait_reason,
                            user_wait=True,
                            syscall_number=comp.syscall_number if in_syscall else None,
                            teb=teb, stack_base=top, stack_limit=limit,
                            context=UserContext(comp.rip, comp.rsp, comp.registers.get("rbp", 0),
                                                {k: v for k, v in comp.registers.items()
                                                 if k in ("rbx", "rsi", "rdi", "rcx", "rdx", "r8", "r9", "r10")}),
                            frames=frames, return_addresses=comp.return_addresses,
                            impersonation_sid=spec.impersonating)
        ntdll = layout.images.get("ntdll.dll")
        thread.start_address = ntdll.address_of("RtlUserThreadStart") if ntdll else (comp.start_address or 0)
        thread.win32_start_address = comp.start_address or 0
        if wow:
            thread.cpu_area = compose_top
            self._wow64_side(layout, spec, thread, composer32, in_syscall)
        if spec.start:
            thread.win32_start_address = self._resolve_start(space, spec.start, layout)
        if spec.fiber:
            thread.fiber = self._fiber(layout, self._region_named(layout, spec.fiber, f"{spec.where}.fiber"))
        dispatcher = ntdll.address_of("RtlDispatchAPC") if ntdll and "RtlDispatchAPC" in ntdll.entry.functions else None
        thread.implants = implants.thread_plan(spec.implants, lambda text: self._resolve_start(space, text, layout),
                                               dispatcher)
        return thread

    def _region_named(self, layout: ProcessLayout, name: str, where: str) -> CodeRegion:
        region = layout.regions.get(name)
        if region is None or region.bits != 64:
            raise ValueError(f"{where}: no 64-bit region named '{name}' in this process")
        return region

    def _fiber(self, layout: ProcessLayout, region: CodeRegion) -> int:
        """A FIBER structure (x64: FiberData, ExceptionList, StackBase, StackLimit, DeallocationStack)
        whose stack is ``region``: what ConvertThreadToFiber/CreateFiber leave for SwitchToFiber."""
        address = self._data_alloc(layout, 0x40)
        base, data = layout.data_region  # type: ignore[misc]
        fiber = struct.pack("<QQQQQ", 0, 0, region.base + region.size, region.base, region.base)
        data[address - base : address - base + len(fiber)] = fiber
        return address

    def _contexts(self, layout: ProcessLayout) -> None:
        """CONTEXT records the scenario puts in its regions (sleep obfuscation's NtContinue chains):
        RIP the named function, RSP the named thread's, ContextFlags CONTEXT_AMD64 | FULL."""
        by_tid = {t.tid: t for t in layout.plan.threads}
        space = CodeSpace(layout.images, {})
        for name, spec in layout.region_specs.items():
            for rip_name, tid in spec.contexts:
                thread = by_tid.get(tid)
                if thread is None or thread.context is None:
                    raise ValueError(f"region {name}: contexts name thread {tid}, which this process has not "
                                     "(or has no user context)")
                rip = self._resolve_start(space, rip_name, layout)
                record = bytearray(CONTEXT_SIZE)
                struct.pack_into("<I", record, 0x30, 0x10000B)
                struct.pack_into("<Q", record, 0x98, thread.context.rsp)
                struct.pack_into("<Q", record, 0xF8, rip)
                layout.regions[name].append(bytes(record), align=0x10)

    # ---- system-call arguments ----------------------------------------------------------

    def _arguments(self, layout: ProcessLayout, spec: ThreadSpec, frames: list[str], comp: Composition) -> None:
        """Put the blocked call's arguments where the calling convention left them (see syscall_args)."""
        name = spec.syscall if isinstance(spec.syscall, str) else frames[0].split("!")[-1].split("+")[0]
        if comp.syscall_number is None:
            raise ValueError(f"{spec.where}: `args` describe a system call, but the thread is not in one")

        def next_handle() -> int:
            layout.next_handle += 4
            return layout.next_handle

        try:
            args = ArgumentBuilder(self.machine, lambda size: self._data_alloc(layout, size), next_handle).build(
                name, dict(spec.args))
        except ArgumentError as exc:
            raise ValueError(f"{spec.where}.args: {exc}") from exc
        body, top = comp.allocations.get(1, (comp.rsp, comp.rsp))
        for index, value in enumerate(args.stack):
            address = comp.rsp + 0x28 + 8 * index
            if not body <= address < top:
                raise ValueError(f"{spec.where}: frame 1 '{frames[1]}' has no room for argument {index + 5} of "
                                 f"{name} at {address:#x} (its locals end at {top:#x})")
            comp.stack[address] = struct.pack("<Q", value & 0xFFFFFFFFFFFFFFFF)
        for register, value in args.registers.items():
            comp.registers[register] = value & 0xFFFFFFFFFFFFFFFF
        assert layout.data_region is not None
        base, data = layout.data_region
        for address, blob in args.writes:
            data[address - base : address - base + len(blob)] = blob
        layout.plan.handle_entries.extend(args.handles)

    def _data_alloc(self, layout: ProcessLayout, size: int) -> int:
        if layout.data_region is None:
            layout.data_region = (layout.va.alloc(DATA_RESERVE, "system-call data"), bytearray())
        base, data = layout.data_region
        offset = (len(data) + 15) & ~15
        if offset + size > DATA_RESERVE:
            raise ValueError("the system-call argument data does not fit in its region")
        data.extend(bytes(offset + size - len(data)))
        return base + offset

    def _finish_data(self, layout: ProcessLayout) -> None:
        if layout.data_region is None:
            return
        base, data = layout.data_region
        size = (len(data) + PAGE - 1) & ~(PAGE - 1)
        layout.plan.writes.append(PageWrite(base, bytes(data) + bytes(size - len(data)), writable=True, dirty=True))
        layout.plan.vads.append(VadPlan(base, base + DATA_RESERVE - 1, MM_PROTECTION["RW-"], True, "private",
                                        commit_pages=size // PAGE, label="heap (system-call data)"))

    def _wow64_native_frames(self, layout: ProcessLayout, spec: ThreadSpec) -> list[str]:
        """The 64-bit half of a WOW64 thread in a system call: ntdll stub <- wow64 thunk <- CPU loop."""
        if not spec.stack32:
            raise ValueError(f"{spec.where}: a thread needs `stack`")
        module, _, first = spec.stack32[0].partition("!")
        first = first.split("+")[0].split("@")[0]
        if module.lower() == "win32u.dll":  # win32k calls go through wow64win's thunks
            head = [f"win32u.dll!{first}", f"wow64win.dll!wh{first}"]
        else:
            head = [f"ntdll.dll!{first}", f"wow64.dll!wh{first}"]
        return head + ["wow64.dll!Wow64SystemServiceEx",
                "wow64cpu.dll!BTCpuSimulate", "wow64.dll!RunCpuSimulation", "wow64.dll!Wow64LdrpInitialize",
                "ntdll.dll!LdrpInitialize", "ntdll.dll!LdrInitializeThunk"]

    def _wow64_side(self, layout: ProcessLayout, spec: ThreadSpec, thread: ThreadPlan,
                    composer32: StackComposer32, in_syscall: bool) -> None:
        stack32 = layout.va32.alloc(STACK_RESERVE, "32-bit stack")
        top32 = stack32 + STACK_RESERVE
        comp32 = composer32.compose(list(spec.stack32), top32, in_syscall=in_syscall)
        writes: dict[int, bytes] = {}
        for address, data in comp32.stack.items():
            writes[address] = data
        limit32 = self._stack_pages(layout.plan, stack32, top32, writes, thread.tid, width=4)
        assert thread.teb is not None
        thread.wow64 = Wow64Context(comp32.eip, comp32.esp, comp32.ebp, thread.teb + 0x2000, top32, limit32)
        thread.return_addresses32 = comp32.return_addresses
        thread.win32_start_address = comp32.start_address or thread.win32_start_address
        ntdll32 = layout.images32.get("ntdll.dll")
        if ntdll32 is not None:
            thread.start_address = ntdll32.address_of("RtlUserThreadStart")

    def _stack_pages(self, plan: ProcessPlan, reserve: int, top: int, stack: dict[int, bytes], tid: int,
                     width: int = 8) -> int:
        """Commit the pages the stack uses (plus one), write them, and add the stack's VAD."""
        lowest = min(stack) if stack else top - PAGE
        limit = max(reserve + PAGE, ((lowest & ~(PAGE - 1)) - PAGE))
        image = bytearray(top - limit)
        for address, data in stack.items():
            image[address - limit : address - limit + len(data)] = data
        plan.writes.append(PageWrite(limit, bytes(image), writable=True, dirty=True))
        plan.vads.append(VadPlan(reserve, top - 1, MM_PROTECTION["RW-"], True, "private",
                                 commit_pages=(top - limit) // PAGE, label=f"stack {tid}"))
        return limit

    def _syscall_number(self, layout: ProcessLayout, syscall: str | int | None) -> int | None:
        if syscall is None or isinstance(syscall, int):
            return syscall
        for table in (layout.images, layout.images32):
            for name in ("ntdll.dll", "win32u.dll"):
                image = table.get(name)
                if image is not None and syscall in image.entry.functions:
                    head = image.read(image.address_of(syscall), 8)
                    if head[:4] == b"\x4c\x8b\xd1\xb8":
                        return struct.unpack("<I", head[4:8])[0]
        raise ValueError(f"unknown system call '{syscall}' (not an ntdll or win32u stub)")

    def _resolve_start(self, space: CodeSpace, text: str, layout: ProcessLayout) -> int:
        from .codespace import FrameSpec

        spec = FrameSpec.parse(text)
        image = space.image_named(spec.name) or layout.images32.get(spec.name.lower())
        if image is not None:
            base = image.address_of(spec.function) if spec.function else image.base
            return base + (spec.offset or 0)
        region = layout.regions.get(spec.name)
        if region is None:
            raise ValueError(f"thread start '{text}' names no module or region")
        return region.base + (spec.offset or 0)

    def _environment(self, spec: ProcessSpec, user: str) -> dict[str, str]:
        env = {
            "ALLUSERSPROFILE": "C:\\ProgramData", "ComSpec": "C:\\Windows\\system32\\cmd.exe",
            "NUMBER_OF_PROCESSORS": str(self.scenario.processors), "OS": "Windows_NT",
            "Path": "C:\\Windows\\system32;C:\\Windows;C:\\Windows\\System32\\Wbem",
            "PROCESSOR_ARCHITECTURE": "AMD64", "SystemDrive": "C:", "SystemRoot": "C:\\Windows",
            "TEMP": "C:\\Windows\\TEMP", "windir": "C:\\Windows",
        }
        if self.scenario.computer_name:
            env["COMPUTERNAME"] = self.scenario.computer_name
        if spec.session:
            env.update({"USERNAME": "alice", "USERPROFILE": "C:\\Users\\alice",
                        "TEMP": "C:\\Users\\alice\\AppData\\Local\\Temp"})
        env.update(dict(spec.env))
        return env


# The first bytes of an executable region the scenario leaves empty: a plausible function prologue
# (what malfind's "Function prologue" note recognises), then padding before generated code.
_PREAMBLE = {
    "x64": bytes.fromhex("554889e54883e4f04883ec20") + b"\xcc" * 4,
    "x86": bytes.fromhex("5589e583e4f083ec10") + b"\xcc" * 7,
}
