"""Which system call a thread is blocked in, and what kind of activity that call is.

Two pieces of evidence name the call: ``_KTHREAD.SystemCallNumber`` (the number the
thread last passed to the kernel; the layout has it on Windows 8 and later), mapped to
a name through the image's own ntdll.dll and win32u.dll (each ``Nt*`` export is a stub
``mov r10, rcx; mov eax, <number>; syscall``, so the stub's bytes give the number), and
the stub frame 0 stops in. The number wins when both exist: a thread that issued the
call from another stub's ``syscall`` instruction (a gadget) is doing what the number
says, not what the stub's name says. Either way, the thread must be stopped right after
a ``syscall`` instruction (frame 0's leading bytes end in ``0f05``); otherwise it is not
in a system call and the number is a leftover of an earlier one.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from ..engine.context import ProcessContext
from ..memory import MemoryMissing, Module
from ..engine.stack import Frame, ThreadStack
from ..engine.system import system_call_stub

STUB_HEAD = b"\x4c\x8b\xd1\xb8"  # mov r10, rcx; mov eax, imm32
SYSCALL_TAIL = "0f05"
STUB_MODULES = ("ntdll.dll", "win32u.dll")


class Family(str, enum.Enum):
    """What a system call does, as far as the event builder cares."""

    PROCESS_CREATE = "process creation"
    FILE_CREATE = "file creation"
    FILE_WRITE = "file write"
    FILE_SET_INFORMATION = "file information"
    REGISTRY_SET = "registry value write"
    REGISTRY_CREATE = "registry key creation"
    REGISTRY_DELETE = "registry deletion"
    SECTION_MAP = "section mapping"
    SECTION_CREATE = "section creation"
    MEMORY_API = "memory or thread API"
    DEVICE_CONTROL = "device control"
    WAIT = "wait"
    IO = "I/O"
    OTHER = "other"


_FAMILIES: dict[str, Family] = {
    "NtCreateUserProcess": Family.PROCESS_CREATE,
    "NtCreateProcessEx": Family.PROCESS_CREATE,
    "NtCreateProcess": Family.PROCESS_CREATE,
    "NtCreateFile": Family.FILE_CREATE,
    "NtOpenFile": Family.FILE_CREATE,
    "NtWriteFile": Family.FILE_WRITE,
    "NtSetInformationFile": Family.FILE_SET_INFORMATION,
    "NtSetValueKey": Family.REGISTRY_SET,
    "NtCreateKey": Family.REGISTRY_CREATE,
    "NtDeleteKey": Family.REGISTRY_DELETE,
    "NtDeleteValueKey": Family.REGISTRY_DELETE,
    "NtMapViewOfSection": Family.SECTION_MAP,
    "NtMapViewOfSectionEx": Family.SECTION_MAP,
    "NtCreateSection": Family.SECTION_CREATE,
    "NtCreateSectionEx": Family.SECTION_CREATE,
    "NtAllocateVirtualMemory": Family.MEMORY_API,
    "NtAllocateVirtualMemoryEx": Family.MEMORY_API,
    "NtProtectVirtualMemory": Family.MEMORY_API,
    "NtWriteVirtualMemory": Family.MEMORY_API,
    "NtReadVirtualMemory": Family.MEMORY_API,
    "NtQueueApcThread": Family.MEMORY_API,
    "NtQueueApcThreadEx": Family.MEMORY_API,
    "NtSetContextThread": Family.MEMORY_API,
    "NtCreateThreadEx": Family.MEMORY_API,
    "NtUnmapViewOfSection": Family.MEMORY_API,
    "NtDeviceIoControlFile": Family.DEVICE_CONTROL,
    "NtRemoveIoCompletion": Family.WAIT,
    "NtRemoveIoCompletionEx": Family.WAIT,
    "NtUserGetMessage": Family.WAIT,
    "NtListenPort": Family.WAIT,
    "NtReadFile": Family.IO,
    "NtFsControlFile": Family.IO,
    "NtNotifyChangeDirectoryFile": Family.IO,
    "NtNotifyChangeDirectoryFileEx": Family.IO,
    "NtLockFile": Family.IO,
    "NtFlushBuffersFile": Family.IO,
    "NtQueryDirectoryFile": Family.IO,
    "NtQueryDirectoryFileEx": Family.IO,
}


def family_of(name: str) -> Family:
    """The family of a system call named ``Nt...`` or ``Zw...`` (both name the same stub)."""
    if name.startswith("Zw"):
        name = "Nt" + name[2:]
    found = _FAMILIES.get(name)
    if found is not None:
        return found
    if "Wait" in name or name == "NtDelayExecution":
        return Family.WAIT
    return Family.OTHER


@dataclass(slots=True)
class SyscallTable:
    """System-call numbers to stub names, read from one ntdll.dll / win32u.dll pair."""

    names: dict[int, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    def name(self, number: int | None) -> str | None:
        return None if number is None else self.names.get(number)


@dataclass(slots=True)
class SyscallTables:
    """Tables per stub module (path, base, timestamp): built once per image, shared by processes."""

    cache: dict[tuple[str, int, int | None], dict[int, str]] = field(default_factory=dict)

    def for_process(self, ctx: ProcessContext) -> SyscallTable:
        table = SyscallTable()
        for module in ctx.memory.modules():
            if module.name.lower() not in STUB_MODULES:
                continue
            key = (module.path.lower(), module.base, module.timestamp)
            if key not in self.cache:
                self.cache[key] = _read_stubs(ctx, module)
            for number, name in self.cache[key].items():
                table.names.setdefault(number, name)
            table.sources.append(module.path.lower())
        return table


def _read_stubs(ctx: ProcessContext, module: Module) -> dict[int, str]:
    image = ctx.image_of(module)
    if image is None:
        return {}
    out: dict[int, str] = {}
    for export in image.exports:
        if not export.name.startswith("Nt"):
            continue
        try:
            head = ctx.cache.read(module.base + export.rva, 8)
        except MemoryMissing:
            continue
        if head[:4] == STUB_HEAD:
            out.setdefault(struct.unpack_from("<I", head, 4)[0], export.name)
    return out


@dataclass(slots=True)
class Syscall:
    """The system call a thread is in: its name, number, and how each was known."""

    name: str | None
    number: int | None
    family: Family
    # the genuine system-call stub of a Windows module frame 0 stops in (ntdll.dll!NtXxx,
    # user32.dll+0x1a2b on Windows 7), when it is one: None for a hand-written stub
    stub: str | None = None
    source: str = ""  # which evidence named the call
    mismatch: bool = False  # the number and the stub name disagree

    def to_ecs(self) -> dict[str, object]:
        out: dict[str, object] = {"source": self.source}
        if self.name:
            out["name"] = self.name
        if self.number is not None:
            out["number"] = self.number
        if self.stub:
            out["stub"] = self.stub
        if self.mismatch:
            out["stub_mismatch"] = True
        return out


def resolve_syscall(stack: ThreadStack, table: SyscallTable) -> Syscall | None:
    """The call a thread is blocked in, or None when it is not stopped after a ``syscall``."""
    if not stack.frames or not stack.frames[0].callsite_leading_bytes.endswith(SYSCALL_TAIL):
        return None
    thread = stack.thread
    number = getattr(thread, "syscall_number", None)
    frame = stack.frames[0]
    stub_number = system_call_stub(frame)
    stub = _stub_label(frame) if stub_number is not None else None
    stub_name = _stub_function(frame) if stub is not None else None
    by_number = table.name(number)
    if by_number is not None:
        mismatch = stub is not None and (stub_number != number or (stub_name is not None and stub_name != by_number))
        source = "_KTHREAD.SystemCallNumber mapped through the ntdll/win32u stubs"
        return Syscall(by_number, number, family_of(by_number), stub, source, mismatch)
    if stub is not None:
        name = stub_name or table.name(stub_number)
        source = "the system-call stub frame 0 stops in"
        if number is not None:
            source += f" (SystemCallNumber {number:#x} names no stub)"
        mismatch = number is not None and number != stub_number
        return Syscall(name, number if number is not None else stub_number,
                       family_of(name) if name else Family.OTHER, stub, source, mismatch)
    if number is not None:
        return Syscall(None, number, Family.OTHER, None, "_KTHREAD.SystemCallNumber (no stub has this number)")
    return None


def _stub_label(frame: Frame) -> str:
    """``user32.dll!NtUserGetMessage`` when the stub is named, else ``user32.dll+0x1a2b``
    (Windows 7's user32 does not export its win32k stubs)."""
    assert frame.module is not None
    name = frame.module.name.lower()
    function = _function_of(frame)
    if function:
        return f"{name}!{function}"
    return f"{name}+{frame.address - frame.module.base:#x}"


def _function_of(frame: Frame) -> str | None:
    if "!" not in frame.symbol_info:
        return None
    return frame.symbol_info.rsplit("!", 1)[1].split("+", 1)[0] or None


def _stub_function(frame: Frame) -> str | None:
    """The ``Nt*`` name the stub is exported as (``Zw*`` read as ``Nt*``), if it is."""
    function = _function_of(frame)
    if function is None or not function.startswith(("Nt", "Zw")):
        return None
    return "Nt" + function[2:]
