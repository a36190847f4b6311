"""Executive objects: _EPROCESS/_KPROCESS, _ETHREAD/_KTHREAD with their trap frames, tokens.

Every field is written by name through the symbol table; fields that only some
builds have (``SystemCallNumber``, ``WoW64Process`` vs ``Wow64Process``,
``ImageFilePointer``...) are written when the table has them, following the
same order of preference Volatility reads them in.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from . import implants
from .layout import LayoutError, StructBuffer
from .machine import Machine, set_unicode, utf16z
from .paging import KERNEL_DATA
from .plan import ProcessPlan, ThreadPlan

KSTACK_REGION = 0xFFFFD3810A000000
KSTACK_STRIDE = 0x8000
PROCESS_OBJECT, THREAD_OBJECT = 3, 6
USER_MODE = 1
STATUS_PENDING = 0x103  # what a live process's and thread's ExitStatus holds until they exit

_STATES = ["Initialized", "Ready", "Running", "Standby", "Terminated", "Waiting", "Transition", "DeferredReady"]


@dataclass(frozen=True, slots=True)
class ProcessObject:
    """Where an _EPROCESS and its list heads landed."""

    va: int
    active_links: int
    thread_head: int
    kthread_head: int
    session_links: int


def parse_sid(text: str) -> bytes:
    """``S-1-5-21-...`` as the bytes of a _SID (revision, count, authority, sub-authorities)."""
    parts = text.split("-")
    if len(parts) < 3 or parts[0] != "S" or not all(p.isdigit() for p in parts[1:]):
        raise ValueError(f"not a SID: {text!r}")
    revision, authority, subs = int(parts[1]), int(parts[2]), [int(p) for p in parts[3:]]
    return bytes([revision, len(subs)]) + authority.to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)


# ---- processes ----------------------------------------------------------------


def allocate_process(m: Machine, new_object) -> int:
    """Reserve an _EPROCESS (its VADs and threads point back to it before it is filled)."""
    return new_object("Process", m.size("_EPROCESS"), b"Proc")


def write_process(m: Machine, va: int, plan: ProcessPlan, extras: "ProcessExtras") -> ProcessObject:
    """Fill one _EPROCESS at ``va``; list links are filled later by the assembler."""
    ep = m.struct("_EPROCESS")
    ep.set_if("Pcb.Header.Type", PROCESS_OBJECT)
    ep.set("Pcb.DirectoryTableBase", plan.dtb)
    ep.set_if("Pcb.BasePriority", 8)
    ep.set("UniqueProcessId", plan.pid)
    ep.set("InheritedFromUniqueProcessId", plan.ppid)
    ep.set("CreateTime.QuadPart", plan.create_time)
    ep.set_bytes("ImageFileName", plan.name.encode("ascii", "replace")[:14] + b"\0")
    ep.set("ActiveThreads", len(plan.threads))
    ep.set_if("ActiveThreadsHighWatermark", len(plan.threads))
    ep.set_if("PriorityClass", 2)
    ep.set_if("SignatureLevel", plan.signature_level)
    ep.set_if("SectionSignatureLevel", plan.signature_level)
    ep.set_if("Cookie", (plan.pid * 0x9E3779B1) & 0xFFFFFFFF)
    ep.set_if("OwnerProcessId", plan.ppid)
    ep.set_if("ExitStatus", STATUS_PENDING)
    ep.set("Peb", plan.peb)
    _set_token(ep, extras.token)
    if extras.session:
        ep.set("Session", extras.session)
    if extras.handle_table:
        ep.set("ObjectTable", extras.handle_table)
    if extras.image_file:
        ep.set_if("ImageFilePointer", extras.image_file)
    if extras.audit_name:
        ep.set("SeAuditProcessCreationInfo.ImageFileName", extras.audit_name)
    if plan.modules:
        ep.set_if("SectionBaseAddress", plan.modules[0].base)
    _set_wow64(m, ep, extras.wow64_pointer)
    _set_vad_root(m, ep, va, extras.vad_root, len(plan.vads))
    _set_clone_root(m, ep, extras.clone_descriptor)
    m.kput(va, ep)
    return ProcessObject(
        va,
        va + ep.offset("ActiveProcessLinks"),
        va + ep.offset("ThreadListHead"),
        va + ep.offset("Pcb.ThreadListHead"),
        va + ep.offset("SessionProcessLinks") if ep.has("SessionProcessLinks") else 0,
    )


@dataclass(slots=True)
class ProcessExtras:
    """Kernel-side objects a process points to, allocated before the _EPROCESS itself."""

    token: int = 0
    session: int = 0
    handle_table: int = 0
    image_file: int = 0
    audit_name: int = 0
    wow64_pointer: int = 0
    vad_root: int = 0
    clone_descriptor: int = 0


def _set_token(ep: StructBuffer, token: int) -> None:
    if token:
        ep.set("Token.Value", token | 0x7)  # _EX_FAST_REF: low bits are a reference count


def _set_wow64(m: Machine, ep: StructBuffer, value: int) -> None:
    for name in ("WoW64Process", "Wow64Process"):
        if ep.has(name):
            ep.set(name, value)
            return
    if value:
        raise LayoutError(f"{m.layout.source}: _EPROCESS has neither WoW64Process nor Wow64Process")


def _set_vad_root(m: Machine, ep: StructBuffer, eprocess_va: int, root: int, count: int) -> None:
    """Windows 8.1+: VadRoot is an _RTL_AVL_TREE, with VadCount and VadHint beside it; Windows 7: the
    tree hangs off BalancedRoot.RightChild, counted by NumberGenericTableElements, hinted by NodeHint,
    and the sentinel BalancedRoot is its own parent, as the kernel initialises every AVL table.
    Readers trust these (MemProcFS reads no VAD of a tree that says it has none, and finds VadRoot
    without symbols as the kernel pointer right after ExitStatus)."""
    if ep.has("VadRoot.Root"):
        ep.set("VadRoot.Root", root)
        ep.set_if("VadCount", count)
        ep.set_if("VadHint", root)
    elif ep.has("VadRoot.BalancedRoot.RightChild"):
        ep.set("VadRoot.BalancedRoot.RightChild", root)
        ep.set_if("VadRoot.BalancedRoot.u1.Parent", eprocess_va + ep.offset("VadRoot.BalancedRoot"))
        ep.set_if("VadRoot.NumberGenericTableElements", count)
        ep.set_if("VadRoot.NodeHint", root)
    else:
        raise LayoutError(f"{m.layout.source}: cannot find where _EPROCESS.VadRoot keeps its root")


def vad_root_anchor(m: Machine, eprocess_va: int) -> int:
    """The parent a root VAD points back to (Windows 7's BalancedRoot; none on 8.1+)."""
    if m.has_field("_EPROCESS", "VadRoot.BalancedRoot"):
        return eprocess_va + m.offset("_EPROCESS", "VadRoot.BalancedRoot")
    return 0


def _set_clone_root(m: Machine, ep: StructBuffer, descriptor: int) -> None:
    if not descriptor:
        return
    if ep.has("CloneRoot.Root"):
        ep.set("CloneRoot.Root", descriptor)
    elif ep.has("CloneRoot"):
        ep.set("CloneRoot", descriptor)


def write_clone_descriptor(m: Machine) -> int:
    """A clone descriptor node: the evidence that the address space was forked."""
    return m.pool.alloc(0x48, b"MmCl")


INTEGRITY_ATTRIBUTES = 0x60  # SE_GROUP_INTEGRITY | SE_GROUP_INTEGRITY_ENABLED


def write_token(m: Machine, user_sid: str, system: bool, new_object=None) -> int:
    """A primary token whose first SID is the user's, with a few well-known groups and, last, the
    integrity label as Windows marks it (SE_GROUP_INTEGRITY | SE_GROUP_INTEGRITY_ENABLED, its index
    in IntegrityLevelIndex): System for service accounts, Medium for a user's processes."""
    groups = [user_sid, "S-1-1-0", "S-1-5-11", "S-1-16-16384" if system else "S-1-16-8192"]
    integrity = len(groups) - 1
    token = m.struct("_TOKEN")
    sa_size = m.size("_SID_AND_ATTRIBUTES")
    sids = [parse_sid(s) for s in groups]
    tail = sa_size * len(groups) + sum((len(s) + 7) & ~7 for s in sids)
    if new_object is not None:
        va = new_object("Token", len(token) + tail, b"Toke")
    else:
        va = m.pool.alloc(len(token) + tail, b"Toke", object_header=True)
    array = va + len(token)
    token.set("UserAndGroupCount", len(groups))
    token.set("UserAndGroups", array)
    token.set_if("TokenType", 1)
    token.set_if("SessionId", 0 if system else 1)
    privileges = 0x1FFFFFFFF0 if system else 0x0000000880000
    for name in ("Privileges.Present", "Privileges.Enabled", "Privileges.EnabledByDefault"):
        token.set_if(name, privileges)
    token.set_bytes("TokenSource.SourceName", b"User32  ")
    token.set_if("IntegrityLevelIndex", integrity)
    m.kput(va, token)
    sid_va = array + sa_size * len(groups)
    for i, sid in enumerate(sids):
        entry = m.struct("_SID_AND_ATTRIBUTES")
        entry.set("Sid", sid_va)
        entry.set("Attributes", 0 if i == 0 else INTEGRITY_ATTRIBUTES if i == integrity else 7)
        m.kput(array + i * sa_size, entry)
        m.kwrite(sid_va, sid)
        sid_va += (len(sid) + 7) & ~7
    return va


def write_session(m: Machine, session_id: int) -> int:
    session = m.struct("_MM_SESSION_SPACE")
    va = m.pool.alloc(len(session), b"MmSt")
    session.set("SessionId", session_id)
    session.set_if("ReferenceCount", 1)
    m.kput(va, session)
    return va


def write_handle_table(m: Machine, table_code: int, pid: int, handles: int) -> int:
    table = m.struct("_HANDLE_TABLE")
    va = m.pool.alloc(len(table), b"Obtb")
    table.set("TableCode", table_code)
    table.set_if("UniqueProcessId", pid)
    table.set_if("HandleCount", handles)
    table.set_if("NextHandleNeedingPool", (handles + 255) // 256 * 1024)
    m.kput(va, table)
    return va


def write_object_name(m: Machine, nt_path: str) -> int:
    """An _OBJECT_NAME_INFORMATION (what SeAuditProcessCreationInfo points to)."""
    info = m.struct("_OBJECT_NAME_INFORMATION")
    text = utf16z(nt_path)
    va = m.pool.alloc(len(info) + len(text), b"SeOn")
    set_unicode(info, "Name", nt_path, va + len(info))
    m.kput(va, info)
    m.kwrite(va + len(info), text)
    return va


def write_ewow64process(m: Machine, peb32: int) -> int:
    """What _EPROCESS's WOW64 pointer holds, in the form Volatility's get_peb32 expects for this build."""
    if m.layout.has_type("_EWOW64PROCESS"):
        wow = m.struct("_EWOW64PROCESS")
        va = m.pool.alloc(len(wow), b"PsWo")
        wow.set("Peb", peb32)
        wow.set_if("Machine", 0x14C)
        m.kput(va, wow)
        return va
    if m.layout.has_type("_WOW64_PROCESS"):
        wow = m.struct("_WOW64_PROCESS")
        va = m.pool.alloc(len(wow), b"PsWo")
        wow.set("Wow64", peb32)
        m.kput(va, wow)
        return va
    return peb32  # Windows 7 / 8.1: the field holds the 32-bit PEB's address itself


# ---- threads --------------------------------------------------------------------


def write_thread(m: Machine, plan: ThreadPlan, process: ProcessObject, pid: int, index: int,
                 ethread_va: int, impersonation_token: int = 0) -> int:
    """Fill one _ETHREAD at ``ethread_va`` (and its kernel stack and trap frame); returns its address."""
    et = m.struct("_ETHREAD")
    va = ethread_va
    top = _kernel_stack(m, index)
    trap = _trap_frame_va(m, top)
    et.set_if("Tcb.Header.Type", THREAD_OBJECT)
    et.set("Tcb.StackBase", top)
    et.set_if("Tcb.StackLimit", top - 6 * 0x1000)
    et.set_if("Tcb.InitialStack", top - 0x200)
    et.set_if("Tcb.KernelStack", trap - 0x1A0)
    et.set("Tcb.Process", process.va)
    et.set_if("Tcb.ApcState.Process", process.va)
    et.set("Tcb.State", _state(m, plan.state))
    et.set("Tcb.WaitReason", _wait_reason(m, plan.wait_reason))
    et.set_if("Tcb.WaitMode", USER_MODE if plan.user_wait else 0)
    et.set_if("Tcb.PreviousMode", USER_MODE if plan.context else 0)
    et.set_if("Tcb.BasePriority", 8)
    et.set_if("Tcb.Priority", 9)
    et.set_if("Tcb.ContextSwitches", 100 + plan.tid % 997)
    if plan.syscall_number is not None:
        et.set_if("Tcb.SystemCallNumber", plan.syscall_number)
    if plan.teb:
        et.set("Tcb.Teb", plan.teb)
    if plan.context:
        et.set("Tcb.TrapFrame", trap)
        _write_trap_frame(m, trap, plan)
    et.set("Cid.UniqueProcess", pid)
    et.set("Cid.UniqueThread", plan.tid)
    et.set("CreateTime.QuadPart", plan.create_time)
    et.set("StartAddress", plan.start_address)
    et.set("Win32StartAddress", plan.win32_start_address)
    et.set_if("ExitStatus", STATUS_PENDING)
    if not et.set_if("ThreadInserted", 1):
        et.set_if("CrossThreadFlags", 0x2)
    if plan.context is None and not plan.teb:
        et.set_if("SystemThread", 1)
    if impersonation_token:
        # level 2 = SecurityImpersonation in the low bits of the token pointer
        et.set("ClientSecurity.ImpersonationData", impersonation_token | 2)
        if not et.set_if("ActiveImpersonationInfo", 1):
            et.set_if("CrossThreadFlags", et.get("CrossThreadFlags") | 0x8)
    implants.write_thread_flags(et, plan.implants)
    m.kput(va, et)
    implants.write_apcs(m, va, plan.implants)
    return va


def thread_links(m: Machine, ethread_va: int) -> tuple[int, int]:
    """The ETHREAD and KTHREAD list entries of a thread (for the process's two thread lists)."""
    return (ethread_va + m.offset("_ETHREAD", "ThreadListEntry"),
            ethread_va + m.offset("_ETHREAD", "Tcb.ThreadListEntry"))


def _kernel_stack(m: Machine, index: int) -> int:
    top = KSTACK_REGION + (index + 1) * KSTACK_STRIDE
    m.system_space.ensure(top - 0x1000, 0x1000, KERNEL_DATA)
    return top


def _trap_frame_va(m: Machine, top: int) -> int:
    size = m.size("_KTRAP_FRAME")
    return (top - 0x200 - size) & ~0xF


def _write_trap_frame(m: Machine, va: int, plan: ThreadPlan) -> None:
    ctx = plan.context
    assert ctx is not None
    frame = m.struct("_KTRAP_FRAME")
    frame.set("Rip", ctx.rip)
    frame.set("Rsp", ctx.rsp)
    frame.set("Rbp", ctx.rbp)
    frame.set_if("R11", 0x246)
    if plan.syscall_number is not None:
        frame.set_if("Rax", plan.syscall_number)
    frame.set_if("EFlags", 0x246)
    frame.set_if("SegCs", 0x33)
    frame.set_if("SegSs", 0x2B)
    frame.set_if("SegDs", 0x2B)
    frame.set_if("SegEs", 0x2B)
    frame.set_if("SegFs", 0x53)
    frame.set_if("SegGs", 0x2B)
    frame.set_if("MxCsr", 0x1F80)
    frame.set_if("PreviousMode", USER_MODE)
    for name, value in ctx.others.items():
        field = name[0].upper() + name[1:]
        frame.set_if(field, value)
    implants.write_trap_debug(frame, plan.implants)
    m.kput(va, frame)


def _state(m: Machine, name: str) -> int:
    if m.layout.has_enum("_KTHREAD_STATE"):
        return m.layout.enum_value("_KTHREAD_STATE", name)
    if name not in _STATES:
        raise LayoutError(f"unknown thread state {name!r} (known: {', '.join(_STATES)})")
    return _STATES.index(name)


def _wait_reason(m: Machine, name: str) -> int:
    table = m.layout if m.layout.has_enum("_KWAIT_REASON") else m.abi
    return table.enum_value("_KWAIT_REASON", name)
