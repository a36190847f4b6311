"""The narrow memory interface the stack engine works on.

The engine never talks to Volatility or to a dump format directly: it asks a
:class:`ProcessMemory` for bytes at virtual addresses, for the regions of the
address space, for the loaded modules and for the threads with the user-mode
context each was stopped at. A Volatility process layer and a minidump are two
implementations; tests add in-memory ones.

A page that is not present must never read as zeros (a zero-filled stack would
unwind into nonsense silently), so :meth:`ProcessMemory.read` raises
:class:`MemoryMissing` naming the first missing address.
"""

from __future__ import annotations

import bisect
import datetime as dt
import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Sequence

from .implantstate import ApcState, DebugRegisters, MappedFile

PAGE_SIZE = 0x1000


class MemoryMissing(Exception):
    """Raised when any byte of a requested range is not present in the source."""

    def __init__(self, address: int, reason: str = "not present") -> None:
        super().__init__(f"memory at {address:#x} {reason}")
        self.address = address
        self.reason = reason


class RegionKind(str, enum.Enum):
    """How a region of the address space is backed, as a VAD or MEMORY_INFO says."""

    IMAGE = "image"
    MAPPED = "mapped"
    PRIVATE = "private"
    UNKNOWN = "unknown"


UNKNOWN_PROTECTION = "Unknown"

# PAGE_* values as Elastic spells them (the VAD and MEMORY_INFO both hold these numbers).
_BASE_PROTECTIONS = {
    0x01: "---",  # PAGE_NOACCESS
    0x02: "R--",  # PAGE_READONLY
    0x04: "RW-",  # PAGE_READWRITE
    0x08: "RW-",  # PAGE_WRITECOPY: writable, copy on first write
    0x10: "--X",  # PAGE_EXECUTE
    0x20: "R-X",  # PAGE_EXECUTE_READ
    0x40: "RWX",  # PAGE_EXECUTE_READWRITE
    0x80: "RWX",  # PAGE_EXECUTE_WRITECOPY
}
_PROTECTION_MODIFIERS = ((0x100, "GUARD"), (0x200, "NOCACHE"), (0x400, "WRITECOMBINE"))


def page_protection(protect: int) -> str:
    """Spell a PAGE_* value the way Elastic's ``protection`` field does (``R-X``, ``RWX|GUARD``).

    Zero (reserved or free memory carries no page protection) reads ``---``.
    """
    base = _BASE_PROTECTIONS.get(protect & 0xFF, "---")
    suffixes = [name for bit, name in _PROTECTION_MODIFIERS if protect & bit]
    return "|".join([base, *suffixes])


@dataclass(frozen=True, slots=True)
class Region:
    """One allocation (VAD, or MEMORY_INFO run) of a process address space.

    ``end`` is exclusive. ``protection`` uses Elastic's spelling (``RWX``,
    ``R-X``, ``RW-``, ``R--``, ``---``) or :data:`UNKNOWN_PROTECTION` when the
    source does not record it: it is never guessed.
    """

    start: int
    end: int
    protection: str = UNKNOWN_PROTECTION
    kind: RegionKind = RegionKind.UNKNOWN
    path: str | None = None
    allocation_base: int | None = None
    private_executable_bytes: int | None = None
    file_object: int | None = None  # the FILE_OBJECT a mapped or image VAD maps, when the source records it

    def contains(self, address: int) -> bool:
        return self.start <= address < self.end

    def part(self, start: int, end: int, protection: str) -> "Region":
        """``[start, end)`` of this region with a protection of its own (an image VAD's section),
        all else kept: one constructor call, where ``dataclasses.replace`` spent ~5 us a part
        looking up the fields, and an image VAD splits into one part per section."""
        return Region(start, end, protection, self.kind, self.path, self.allocation_base,
                      self.private_executable_bytes, self.file_object)

    @property
    def executable(self) -> bool | None:
        """True/False when the protection is known, None when it is not."""
        if self.protection == UNKNOWN_PROTECTION:
            return None
        return len(self.protection) >= 3 and self.protection[2] == "X"


@dataclass(frozen=True, slots=True)
class Module:
    """A PE image mapped in the process.

    ``linked`` is False for an image found in an image-backed region that no
    loader list names (an unlinked, possibly hidden, module).
    """

    base: int
    size: int
    path: str
    timestamp: int | None = None
    checksum: int | None = None
    linked: bool = True
    load_time: dt.datetime | None = None  # the loader entry's LoadTime, when the source records it
    signing_level: int | None = None  # the loader entry's SigningLevel (SE_SIGNING_LEVEL_*); 0 = not checked

    @property
    def name(self) -> str:
        return self.path.replace("/", "\\").rsplit("\\", 1)[-1]

    @property
    def end(self) -> int:
        return self.base + self.size

    def contains(self, address: int) -> bool:
        return self.base <= address < self.base + self.size


@dataclass(frozen=True, slots=True)
class Wow64Context:
    """The 32-bit context of a WOW64 thread (from the TEB's WOW64 CPU area)."""

    eip: int
    esp: int
    ebp: int
    stack_base: int | None = None
    stack_limit: int | None = None


@dataclass(frozen=True, slots=True)
class ExceptionInfo:
    """The exception a crash dump was written for, on the thread that raised it.

    ``registers`` is the context at the fault (what WinDbg's ``.ecxr`` shows), in the same
    form as :attr:`ThreadInfo.registers`; the thread's own context is where it is *now*
    (usually inside the crash handler). ``registers`` is None, with ``note``, when the
    dump's copy cannot be read.
    """

    code: int
    address: int
    flags: int = 0
    parameters: tuple[int, ...] = ()
    registers: dict[str, int] | None = None
    note: str | None = None

    @property
    def name(self) -> str:
        return EXCEPTION_NAMES.get(self.code, f"exception {self.code:#010x}")

    def describe(self) -> str:
        """``ACCESS_VIOLATION (0xc0000005) writing 0x0 at 0x7ff6...``: code, name and, for an
        access violation, what was accessed (ExceptionInformation[0] and [1])."""
        text = f"{self.name} ({self.code:#010x}) at {self.address:#x}"
        if self.code == 0xC0000005 and len(self.parameters) >= 2:
            verb = {0: "reading", 1: "writing", 8: "executing (DEP)"}.get(self.parameters[0], "accessing")
            text += f", {verb} {self.parameters[1]:#x}"
        return text


# NTSTATUS codes a crash dump commonly carries, as WinDbg names them.
EXCEPTION_NAMES = {
    0x80000003: "BREAKPOINT",
    0x80000004: "SINGLE_STEP",
    0xC0000005: "ACCESS_VIOLATION",
    0xC000000D: "INVALID_PARAMETER",
    0xC000001D: "ILLEGAL_INSTRUCTION",
    0xC0000094: "INTEGER_DIVIDE_BY_ZERO",
    0xC0000096: "PRIVILEGED_INSTRUCTION",
    0xC00000FD: "STACK_OVERFLOW",
    0xC0000374: "HEAP_CORRUPTION",
    0xC0000409: "STACK_BUFFER_OVERRUN (fail fast)",
    0xC0000420: "ASSERTION_FAILURE",
    0xC0000602: "FAIL_FAST_EXCEPTION",
    0xE06D7363: "C++ exception",
}


@dataclass(slots=True)
class ThreadInfo:
    """A thread and the user-mode state it was stopped in.

    ``registers`` holds the 64-bit general registers by lower-case name
    (``rip``, ``rsp``, ``rbp``, ``rbx``...), or the 32-bit ones (``eip``,
    ``esp``, ``ebp``) for a 32-bit process. It is None when the thread has no
    user context (system thread, trap frame paged out); ``note`` then says why.
    """

    tid: int
    registers: dict[str, int] | None = None
    stack_base: int | None = None
    stack_limit: int | None = None
    teb: int | None = None
    wow64: Wow64Context | None = None
    start_address: int | None = None
    win32_start_address: int | None = None
    state: str | None = None
    wait_reason: str | None = None
    syscall_number: int | None = None
    note: str | None = None
    extra: dict[str, object] = field(default_factory=dict)
    create_time: dt.datetime | None = None
    impersonation_sid: str | None = None  # the user SID of the token the thread impersonates, if any
    object_address: int | None = None  # where the thread object (_ETHREAD) lies, for evidence
    exception: ExceptionInfo | None = None  # a crash dump's exception, on the thread that raised it
    # (stack base, stack limit) of the fiber the thread runs, when its TEB says it runs fibers
    # (HasFiberData): the stack a fiber switch legitimately moves RSP to
    fiber_stack: tuple[int, int] | None = None
    # Implant state (memory/implantstate.py); None: the source cannot see it, never "none there".
    debug_registers: DebugRegisters | None = None
    apc_state: ApcState | None = None

    @property
    def rip(self) -> int | None:
        return None if self.registers is None else self.registers.get("rip")

    @property
    def rsp(self) -> int | None:
        return None if self.registers is None else self.registers.get("rsp")


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """Identity of the process a :class:`ProcessMemory` describes."""

    pid: int
    name: str
    path: str | None = None
    command_line: str | None = None
    ppid: int | None = None
    is_wow64: bool = False
    pointer_size: int = 8
    create_time: dt.datetime | None = None
    user_sid: str | None = None  # the first SID of the primary token
    session: int | None = None
    # _EPROCESS.CloneRoot is set: the address space took part in a fork. Windows sets it in the
    # clone and in the process it was cloned from, so on its own it does not say which is which.
    clone_root: bool | None = None
    image_device_path: str | None = None  # the image's file object name, with its device
    signature_level: int | None = None  # _EPROCESS.SignatureLevel (SE_SIGNING_LEVEL_*); 0 = not checked
    object_address: int | None = None  # where the process object (_EPROCESS) lies, for evidence
    working_directory: str | None = None  # the PEB's ProcessParameters.CurrentDirectory.DosPath
    integrity_sid: str | None = None  # the primary token's integrity group (S-1-16-RID), SE_GROUP_INTEGRITY


@dataclass(frozen=True, slots=True)
class HandleInfo:
    """What a process's handle refers to, as the source's handle table resolves it.

    ``type`` is the object type name (``File``, ``Key``, ``Section``, ``Process``...); ``name``
    the object's name as the kernel records it (a file with its device,
    ``\\Device\\HarddiskVolume3\\Users\\x``; a key below ``\\REGISTRY``; a section's backing file).
    """

    type: str
    name: str | None = None
    object_address: int | None = None
    granted_access: int | None = None
    image_section: bool | None = None  # a Section: created from an executable image (SEC_IMAGE)
    pid: int | None = None  # a Process (or Thread): the process id it refers to


class ProcessMemory(ABC):
    """One process's address space, as the stack engine needs it.

    Implementations provide :meth:`read`, :meth:`regions`, :meth:`modules`,
    :meth:`threads` and :attr:`process`; the helpers here derive the rest.
    """

    process: ProcessInfo
    # True when :meth:`regions` lists every mapped region (a VAD tree, a MemoryInfoList, a dump
    # holding all of the process's memory), so an address in none is not mapped. A normal
    # minidump without a MemoryInfoList knows only the few ranges it holds: elsewhere the engine
    # must say "unknown", never "not code" or "not unbacked".
    regions_complete: bool = True

    @abstractmethod
    def read(self, address: int, size: int) -> bytes:
        """Return exactly ``size`` bytes at ``address`` or raise :class:`MemoryMissing`."""

    @abstractmethod
    def regions(self) -> Sequence[Region]:
        """All regions, sorted by start, not overlapping."""

    @abstractmethod
    def modules(self) -> Sequence[Module]:
        """Loaded PE images, sorted by base."""

    @abstractmethod
    def threads(self) -> Sequence[ThreadInfo]:
        """Every thread of the process, including those without user context."""

    def handle(self, value: int) -> HandleInfo | None:
        """The object behind a handle value of this process; None when the source has no
        handle table (a minidump without a handle stream) or the handle is not in it."""
        return None

    def mapped_file(self, allocation_base: int) -> MappedFile | None:
        """The file object behind the image or file mapping at ``allocation_base``; None when the
        source does not record file objects (a minidump) or it cannot be read."""
        return None

    def file_bytes(self, module: Module, address: int, size: int) -> bytes | None:
        """The bytes at ``address`` as ``module``'s file on disk maps them (relocated), for
        comparing code with what shipped; None when no module file was given or it lacks them."""
        return None
    def present_ranges(self, start: int, end: int) -> Iterable[tuple[int, int]]:
        """The page-aligned sub-ranges of ``[start, end)`` that may hold readable pages, in order.

        Why: a scan over large private regions (mostly reserved, not committed) would otherwise
        try every page and pay for a failed read each time. A source that can list its present
        pages cheaply (a page table, walked a whole table at a time) says so here; the default
        yields the range whole, and :meth:`read` still decides page by page. A page left out
        must be one :meth:`read` would refuse."""
        yield start, end

    # ---- derived helpers -------------------------------------------------

    def read_partial(self, address: int, size: int) -> bytes:
        """Read as many leading bytes of the range as are present (page by page)."""
        out = bytearray()
        cur = address
        end = address + size
        while cur < end:
            chunk = min(end, (cur & ~(PAGE_SIZE - 1)) + PAGE_SIZE) - cur
            try:
                out += self.read(cur, chunk)
            except MemoryMissing:
                break
            cur += chunk
        return bytes(out)

    @cached_property
    def _region_index(self) -> tuple[list[int], list[Region]]:
        regs = sorted(self.regions(), key=lambda r: r.start)
        return [r.start for r in regs], regs

    def region_at(self, address: int) -> Region | None:
        starts, regs = self._region_index
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0 and regs[i].contains(address):
            return regs[i]
        return None

    def regions_within(self, start: int, end: int) -> list[Region]:
        """The regions that start in ``[start, end)``, by start. Why: a module's sections are the
        regions inside it, and looking for them over every region of a process costs a scan per
        module: ~200 modules by ~1,300 VADs in a real explorer."""
        starts, regs = self._region_index
        return regs[bisect.bisect_left(starts, start):bisect.bisect_left(starts, end)]

    @cached_property
    def _allocation_index(self) -> dict[int, list[Region]]:
        index: dict[int, list[Region]] = {}
        for region in self.regions():
            index.setdefault(region.allocation_base, []).append(region)
        return index

    def regions_of_allocation(self, base: int) -> list[Region]:
        """The regions whose allocation base is ``base``, in :meth:`regions`' order. Why: what a
        module's image VAD says (its file, its file object) is looked up once per module, and a
        scan of every region each time costs ~200 modules by ~1,300 VADs in a real explorer."""
        return self._allocation_index.get(base, [])

    @cached_property
    def _module_index(self) -> tuple[list[int], list[Module]]:
        mods = sorted(self.modules(), key=lambda m: m.base)
        return [m.base for m in mods], mods

    def module_at(self, address: int) -> Module | None:
        bases, mods = self._module_index
        i = bisect.bisect_right(bases, address) - 1
        if i >= 0 and mods[i].contains(address):
            return mods[i]
        return None



def merge_sorted(items: Iterable[Region]) -> list[Region]:
    """Sort regions by start and drop any that overlap an earlier one (hostile VAD trees)."""
    out: list[Region] = []
    for region in sorted(items, key=lambda r: (r.start, -r.end)):
        if region.end <= region.start:
            continue
        if out and region.start < out[-1].end:
            continue
        out.append(region)
    return out
