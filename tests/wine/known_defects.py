"""Threads where the engine is known to be wrong, each with the exact first frame it gets wrong.

The stack engine (callstack_forensics/engine) is being reworked; the ground
truth must not be bent to suit it, and a known defect must not hide others.
So each entry names one thread (program and role), the first frame index at
which our frames leave the reference, and what is on the stack there. The
oracle and the tests then hold the engine to exactly that: the thread must
still go wrong at that frame and nowhere earlier, every other thread must be
exact, and a thread that has become exact fails until its entry is removed
(the fix landed: turn the marker off by deleting it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KnownDefect:
    """The engine leaves the reference of ``program``/``role`` at frame ``first_wrong_frame``."""

    program: str
    role: str
    first_wrong_frame: int
    issue: str
    description: str


_CALLBACK_SCAN = (
    "The thread is inside its {what}, entered through ntdll!KiUserCallbackDispatcher from its outer GetMessage. "
    "Frames 0-8 agree (the callback, then KiUserCallbackDispatcher+0xc3, unwound from .pdata). The dispatcher's "
    ".pdata puts its return slot at CFA-8, and Wine leaves 0xdeadbabe there: no code. We then scan from the "
    "dispatcher's own RSP and take a saved RIP *inside* the dispatcher's frame, below the 0xdeadbabe slot (its "
    "setjmp buffer): our frame 9 is ntdll!KiUserCallbackDispatcher+0x3a (scanned), no frame at all. The "
    "reference's frame 9 is user32!GetMessageA+0x88, the outer GetMessage's return address: the first return "
    "address *above* the 0xdeadbabe slot (Wine keeps the outer RIP, win32u!NtUserGetMessage+0x14, in its syscall "
    "frame, off the user stack). Our frames 10-14 are the reference's 9-13, one index late. Fix: resume the scan "
    "above the slot whose value is not code."
)

KNOWN_DEFECTS: tuple[KnownDefect, ...] = (
    KnownDefect(
        "callback", "wndproc_wait", 9, "issue 11 item 7",
        _CALLBACK_SCAN.format(what="window procedure (waiting in WaitForSingleObject)"),
    ),
    KnownDefect(
        "callback", "modal_dialog", 9, "issue 11 item 7",
        _CALLBACK_SCAN.format(what="window procedure, in a modal dialog's GetMessage loop"),
    ),
)


def known_defect(program: str, role: str) -> KnownDefect | None:
    return next((d for d in KNOWN_DEFECTS if (d.program, d.role) == (program, role)), None)


def first_wrong_frame(ours: list[Any], reference: list[int]) -> int | None:
    """The first index where our frames and the reference differ (a missing or an extra frame counts), or None."""
    for i in range(max(len(ours), len(reference))):
        if i >= len(ours) or i >= len(reference) or ours[i].address != reference[i]:
            return i
    return None


def defect_status(defect: KnownDefect, ours: list[Any], reference: list[int]) -> str | None:
    """None while the defect reproduces exactly as recorded; otherwise what changed."""
    first = first_wrong_frame(ours, reference)
    if first is None:
        return "fixed: the thread now equals the reference; remove its entry from tests/wine/known_defects.py"
    if first != defect.first_wrong_frame:
        return (f"changed: the first wrong frame is now {first}, recorded {defect.first_wrong_frame}; "
                f"update or remove the entry in tests/wine/known_defects.py")
    return None
