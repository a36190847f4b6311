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


# None left: the callback threads (the scan took a saved RIP inside KiUserCallbackDispatcher's own
# frame, below the slot holding Wine's 0xdeadbabe) were fixed by resuming the scan above that slot
# and by not requiring a call to lead to a kernel entry point (issue 11 item 7).
KNOWN_DEFECTS: tuple[KnownDefect, ...] = ()


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
