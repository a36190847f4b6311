"""Thread and mapping state that implants leave behind, as a source reads it (no verdicts here).

Why a module of its own: these are raw facts a memory source can or cannot see. A memory
image's kernel objects hold a thread's saved debug registers (the trap frame, when the
thread's ``Header.DebugActive`` says the kernel saved them), its queued APCs (the KTHREAD's
APC lists) and the file object behind an image mapping (deleted, transacted); a minidump
holds a thread's CONTEXT, with the debug registers only when it was written with
CONTEXT_DEBUG_REGISTERS, and none of the rest. ``None`` on a :class:`ThreadInfo` or from
:meth:`ProcessMemory.mapped_file` always means "the source cannot see this", never "none":
the checks in ``events/implants`` must not raise a finding, nor clear one, from it.
"""

from __future__ import annotations

from dataclasses import dataclass

DR7_LOCAL_ENABLE = (0x1, 0x4, 0x10, 0x40)  # L0..L3
DR7_GLOBAL_ENABLE = (0x2, 0x8, 0x20, 0x80)  # G0..G3


@dataclass(frozen=True, slots=True)
class DebugRegisters:
    """Dr0-Dr3, Dr6 and Dr7 of a thread's saved user context, and where they were read.

    ``source`` names the record (``_KTRAP_FRAME (Header.DebugActive set)``, ``CONTEXT``) so
    evidence can say why the values are trusted: a trap frame's debug fields are only
    written by the kernel while the thread's DebugActive flag is set; otherwise they are
    stale and a reader must not report them.
    """

    dr0: int
    dr1: int
    dr2: int
    dr3: int
    dr6: int
    dr7: int
    source: str

    @property
    def addresses(self) -> tuple[int, int, int, int]:
        return (self.dr0, self.dr1, self.dr2, self.dr3)

    def enabled(self, index: int) -> bool:
        """Dr7 enables breakpoint ``index`` (its local or global bit)."""
        return bool(self.dr7 & (DR7_LOCAL_ENABLE[index] | DR7_GLOBAL_ENABLE[index]))


@dataclass(frozen=True, slots=True)
class QueuedApc:
    """One KAPC on a thread's APC list, its routines as the KAPC stores them (not decoded).

    ``mode`` is ``user`` or ``kernel`` (the list the APC was found on, ApcListHead[1] or [0]);
    ``normal_routine`` is the raw KAPC.NormalRoutine (a WOW64 APC's is encoded, a
    QueueUserAPC APC's is the dispatcher with the routine in ``normal_context``).
    """

    address: int  # where the KAPC lies (kernel address), for evidence
    mode: str
    normal_routine: int
    normal_context: int
    system_argument1: int
    system_argument2: int
    kernel_routine: int = 0


@dataclass(frozen=True, slots=True)
class ApcState:
    """A thread's APC queues and whether it would deliver a user APC now.

    ``alertable`` (KTHREAD.Alertable) and ``wait_mode`` (``user``/``kernel``) describe the
    wait the thread is in; ``user_apc_pending`` is KAPC_STATE.UserApcPending. ``truncated``
    says a list was cut (a loop, an unreadable link, the cap): the APCs listed are real,
    but there may be more.
    """

    apcs: tuple[QueuedApc, ...] = ()
    alertable: bool | None = None
    wait_mode: str | None = None
    user_apc_pending: bool | None = None
    truncated: str | None = None

    @property
    def user_apcs(self) -> tuple[QueuedApc, ...]:
        return tuple(a for a in self.apcs if a.mode == "user")


@dataclass(frozen=True, slots=True)
class MappedFile:
    """The file object behind an image mapping (VAD -> control area -> FILE_OBJECT).

    ``name`` is the FILE_OBJECT's FileName (no device); ``delete_pending`` is
    FILE_OBJECT.DeletePending (the file was marked for deletion while the section existed:
    process ghosting, phantom DLLs); ``transaction`` the TxF transaction object the file was
    opened in (FILE_OBJECT.FileObjectExtension's TXN_PARAMETER_BLOCK), 0 when there is none.
    A field that could not be read is None.
    """

    file_object: int
    name: str | None
    delete_pending: bool | None
    transaction: int | None
    control_area: int | None = None


__all__ = ["ApcState", "DebugRegisters", "MappedFile", "QueuedApc", "DR7_GLOBAL_ENABLE", "DR7_LOCAL_ENABLE"]
