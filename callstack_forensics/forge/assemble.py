"""Plans -> memory: write the kernel, every process, thread, VAD and page, and link the lists.

Nothing is decided here; every address comes from the plans. The order matters
only where one object points to another that must exist first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .kernel import KernelGlobals, write_kernel
from .machine import KUSER_USER, Machine
from .obmanager import ObjectManager
from .objects import (
    ProcessExtras, ProcessObject, allocate_process, thread_links, vad_root_anchor, write_clone_descriptor, write_ewow64process,
    write_handle_table, write_object_name, write_process, write_session, write_thread, write_token,
)
from .paging import AddressSpace, PageFlags
from .peb import UserArena, write_peb, write_peb32, write_teb
from .physmem import PAGE
from .plan import HandlePlan, PageWrite, ProcessPlan
from .vad import FileObjects, nt_file_name, write_vad_tree


KUSER_FLAGS = PageFlags(user=True)


@dataclass
class Assembly:
    """What was written where (for the result and for tests)."""

    globals: KernelGlobals
    processes: dict[int, ProcessObject] = field(default_factory=dict)
    threads: dict[tuple[int, int], int] = field(default_factory=dict)


def assemble(m: Machine, plans: list[ProcessPlan], system_time: int, processors: int = 4) -> Assembly:
    kglobals = write_kernel(m, processors, system_time)
    out = Assembly(kglobals)
    objects = ObjectManager(m)
    objects.write_types()
    files = FileObjects(m, objects)
    sessions: dict[int, int] = {}
    shared: dict[tuple[str, int], int] = {}
    thread_index = 0
    for plan in plans:
        space = _address_space(m, plan, kglobals)
        _write_pages(m, space, plan.writes, shared)
        for va in plan.paged_out:
            space.map_paged_out(va, swap_offset=0x1000 + (va >> 12) % 0xFFFF)
        if not plan.kernel_only:
            _write_user_structures(m, space, plan)
        extras = _extras(m, plan, files, sessions, objects)
        eprocess = allocate_process(m, objects.new_object)
        extras.vad_root = write_vad_tree(m, plan.vads, files, eprocess, vad_root_anchor(m, eprocess))
        proc = write_process(m, eprocess, plan, extras)
        out.processes[plan.pid] = proc
        ethreads, kthreads = [], []
        for thread in plan.threads:
            impersonation = write_token(m, thread.impersonation_sid, False, objects.new_object) \
                if thread.impersonation_sid else 0
            ethread = objects.new_object("Thread", m.size("_ETHREAD"), b"Thre")
            va = write_thread(m, thread, proc, plan.pid, thread_index, ethread, impersonation)
            thread_index += 1
            out.threads[(plan.pid, thread.tid)] = va
            elink, klink = thread_links(m, va)
            ethreads.append(elink)
            kthreads.append(klink)
        m.link_list(m.system_space, proc.thread_head, ethreads)
        m.link_list(m.system_space, proc.kthread_head, kthreads)
    m.link_list(m.system_space, kglobals.process_head, [p.active_links for p in out.processes.values()])
    _link_sessions(m, out, plans, sessions)
    _point_initial_system_process(m, out, plans)
    return out


def _address_space(m: Machine, plan: ProcessPlan, kglobals: KernelGlobals) -> AddressSpace:
    space = m.system_space if plan.kernel_only else AddressSpace(m.phys, m.kernel_half)
    if space.translate(KUSER_USER) is None:
        space.map_page(KUSER_USER, kglobals.kuser_pfn, KUSER_FLAGS)
    plan.dtb = space.dtb
    return space


def _write_pages(m: Machine, space: AddressSpace, writes: list[PageWrite], shared: dict[tuple[str, int], int]) -> None:
    for write in writes:
        flags = PageFlags(user=True, writable=write.writable, executable=write.executable, dirty=write.dirty)
        for offset in range(0, len(write.data), PAGE):
            va = write.va + offset
            chunk = write.data[offset : offset + PAGE]
            key = (write.share, va) if write.share else None
            if key is not None and key in shared:
                space.map_page(va, shared[key], flags)
                continue
            pfn = m.phys.alloc()
            space.map_page(va & ~(PAGE - 1), pfn, flags)
            m.phys.write(pfn * PAGE + (va & (PAGE - 1)), chunk)
            if key is not None:
                shared[key] = pfn


def _write_user_structures(m: Machine, space: AddressSpace, plan: ProcessPlan) -> None:
    arena = UserArena(space, *plan.arena)
    heap = plan.arena[0]
    write_peb(m, space, arena, plan, heap)
    if plan.wow64:
        arena32 = UserArena(space, *plan.arena32)
        write_peb32(m, space, arena32, plan, plan.arena32[0])
    for thread in plan.threads:
        if thread.teb:
            write_teb(m, space, plan, thread, thread.cpu_area or 0)


def _extras(m: Machine, plan: ProcessPlan, files: FileObjects, sessions: dict[int, int],
            objects: ObjectManager) -> ProcessExtras:
    extras = ProcessExtras()
    system = plan.kernel_only or plan.user_sid in ("S-1-5-18", "S-1-5-19", "S-1-5-20")
    extras.token = write_token(m, plan.user_sid, system, objects.new_object)
    if plan.session_id is not None:
        if plan.session_id not in sessions:
            sessions[plan.session_id] = write_session(m, plan.session_id)
        extras.session = sessions[plan.session_id]
    entries = _handle_objects(plan, files, objects)
    extras.handle_table = write_handle_table(m, objects.handle_table_code(entries), plan.pid,
                                             plan.handles or len(entries))
    if plan.image_path:
        extras.image_file = files.file_object(nt_file_name(plan.image_path))
        extras.audit_name = write_object_name(m, "\\Device\\HarddiskVolume3" + nt_file_name(plan.image_path))
    if plan.wow64:
        extras.wow64_pointer = write_ewow64process(m, plan.peb32)
    if plan.clone_of is not None or plan.forked:
        extras.clone_descriptor = write_clone_descriptor(m)
    return extras


def _handle_objects(plan: ProcessPlan, files: FileObjects, objects: ObjectManager) -> dict[int, tuple[int, int]]:
    """The objects behind a process's handles: a few every process has, then the scenario's evidence."""
    entries: dict[int, tuple[int, int]] = {}
    if not plan.kernel_only:
        directory = (plan.image_path or "C:\\Windows\\System32\\x").rsplit("\\", 1)[0]
        entries[0x4] = (objects.file(nt_file_name(directory)), 0x100020)
        entries[0x8] = (_named(objects, "Directory", "KnownDlls"), 0x3)
        entries[0xC] = (objects.new_object("Event", 0x18, b"Even"), 0x1F0003)
    for handle in plan.handle_entries:
        entries[handle.value] = (_handle_object(handle, files, objects), handle.access)
    return entries


def _named(objects: ObjectManager, type_name: str, name: str) -> int:
    return objects.new_object(type_name, 0x150, b"Dire", name=name)


def _handle_object(handle: HandlePlan, files: FileObjects, objects: ObjectManager) -> int:
    if handle.kind == "file":
        return objects.file(handle.name, read_only=not handle.access & 0x2)
    if handle.kind == "key":
        return objects.key(handle.name)
    if handle.kind == "section":
        return objects.section(files.mapping(handle.name, True).control_area)
    raise ValueError(f"unknown handle kind {handle.kind!r}")


def _link_sessions(m: Machine, out: Assembly, plans: list[ProcessPlan], sessions: dict[int, int]) -> None:
    if not m.has_field("_MM_SESSION_SPACE", "ProcessList"):
        return
    for session_id, session_va in sessions.items():
        members = [out.processes[p.pid].session_links for p in plans
                   if p.session_id == session_id and out.processes[p.pid].session_links]
        head = session_va + m.offset("_MM_SESSION_SPACE", "ProcessList")
        m.link_list(m.system_space, head, members)


def _point_initial_system_process(m: Machine, out: Assembly, plans: list[ProcessPlan]) -> None:
    if not m.layout.has_symbol("PsInitialSystemProcess"):
        return
    system = next((p for p in plans if p.kernel_only), None)
    if system is not None:
        va = m.symbol_va("PsInitialSystemProcess")
        m.system_space.ensure(va, 8, PageFlags(user=False, writable=True, dirty=True))
        m.system_space.put_u64(va, out.processes[system.pid].va)
