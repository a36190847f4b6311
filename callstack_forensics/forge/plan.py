"""The resolved description of an image: every address chosen, nothing written yet.

The builder turns a scenario into these plans (choosing bases, stacks, TEBs,
laying out call stacks); the writers serialise them through the symbol table.
Keeping the two apart lets tests check the plan against what Volatility reads.
"""

from __future__ import annotations

from pathlib import Path
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .implants import ThreadImplants


@dataclass(slots=True)
class UserContext:
    """The user-mode registers a thread's trap frame holds (64-bit)."""

    rip: int
    rsp: int
    rbp: int = 0
    others: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Wow64Context:
    """The 32-bit registers in the WOW64 CPU area of a 32-bit thread."""

    eip: int
    esp: int
    ebp: int
    teb32: int
    stack_base: int
    stack_limit: int


@dataclass(slots=True)
class HandlePlan:
    """An entry of a process's handle table: a file (volume-relative path), key (\\REGISTRY\\...) or section."""

    value: int
    kind: str
    name: str
    access: int


@dataclass(slots=True)
class ThreadPlan:
    tid: int
    create_time: int
    state: str = "Waiting"
    wait_reason: str = "UserRequest"
    user_wait: bool = True
    syscall_number: int | None = None
    start_address: int = 0
    win32_start_address: int = 0
    teb: int | None = None
    stack_base: int = 0
    stack_limit: int = 0
    context: UserContext | None = None
    wow64: Wow64Context | None = None
    cpu_area: int | None = None    # WOW64: where TEB64.TlsSlots[1] points
    impersonation_sid: str | None = None
    fiber: int | None = None  # the FIBER structure of the fiber the thread runs (TEB.NtTib.FiberData)
    implants: "ThreadImplants | None" = None  # debug registers, queued APCs (forge/implants.py)
    frames: list[str] = field(default_factory=list)  # the call chain as the scenario named it
    return_addresses: list[int] = field(default_factory=list)  # frame 0 first (rip), as laid out
    return_addresses32: list[int] = field(default_factory=list)  # the 32-bit half of a WOW64 thread


@dataclass(slots=True)
class LoadedModule:
    """A loader-list entry (and, when mapped, the image behind it)."""

    base: int
    size: int
    entry_point: int
    path: str           # Win32 path: C:\Windows\System32\ntdll.dll
    linked: bool = True
    timestamp: int = 0
    load_time: int = 0
    bits: int = 64
    signing_level: int = 0  # _LDR_DATA_TABLE_ENTRY.SigningLevel (SE_SIGNING_LEVEL_*)
    source: Path | None = None  # the PE file the image was mapped from (what a disk collection holds)


@dataclass(slots=True)
class VadPlan:
    """One VAD: ``end`` is the last byte (inclusive), as Volatility prints it."""

    start: int
    end: int
    protection: int          # MM_* index into MmProtectToValue
    private: bool
    kind: str                # private | mapped | image
    file_path: str | None = None   # \Windows\System32\ntdll.dll (no device)
    commit_pages: int = 0
    label: str = ""
    file_flags: tuple[str, ...] = ()  # the file object of its own: "deleted", "transacted" (forge/implants.py)

    @property
    def tag(self) -> bytes:
        if self.kind == "private":
            return b"VadS"
        return b"Vad "


@dataclass(slots=True)
class PageWrite:
    """Bytes to place in a process's memory. Pages with the same ``share`` key and
    address reuse one physical frame in every process (images are shared, as on Windows)."""

    va: int
    data: bytes
    writable: bool = False
    executable: bool = False
    dirty: bool = False
    share: str | None = None


@dataclass(slots=True)
class ProcessPlan:
    pid: int
    ppid: int
    name: str
    image_path: str | None          # C:\Windows\System32\notepad.exe
    command_line: str | None
    create_time: int
    session_id: int | None
    user_sid: str
    wow64: bool = False
    kernel_only: bool = False       # the System process
    clone_of: int | None = None     # pid of the process this one was forked from
    forked: bool = False            # has been the source of a fork (its CloneRoot is set too)
    dtb: int = 0
    peb: int = 0
    peb32: int = 0
    modules: list[LoadedModule] = field(default_factory=list)
    modules32: list[LoadedModule] = field(default_factory=list)
    vads: list[VadPlan] = field(default_factory=list)
    threads: list[ThreadPlan] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    writes: list[PageWrite] = field(default_factory=list)
    paged_out: list[int] = field(default_factory=list)   # pages whose PTE says "in the page file"
    arena: tuple[int, int] = (0, 0)                       # where PEB-side structures are allocated
    arena32: tuple[int, int] = (0, 0)                     # the same, below 4 GiB, for WOW64 32-bit ones
    handles: int = 0
    signature_level: int = 0  # _EPROCESS.SignatureLevel of its image
    handle_entries: list[HandlePlan] = field(default_factory=list)
