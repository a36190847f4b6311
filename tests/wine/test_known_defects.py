"""The known-defect markers: a marked thread must go wrong exactly where its entry says.

Pure: frames stand in for the engine's, no Wine needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from .known_defects import KNOWN_DEFECTS, KnownDefect, defect_status, first_wrong_frame, known_defect

DEFECT = KnownDefect("callback", "wndproc_wait", 2, "issue 11 item 7", "frame 2 is scanned from the wrong slot")
REFERENCE = [0x10, 0x20, 0x30, 0x40]


@dataclass
class Frame:
    address: int


def frames(*addresses: int) -> list[Frame]:
    return [Frame(a) for a in addresses]


def test_a_defect_that_still_reproduces_is_quiet():
    assert defect_status(DEFECT, frames(0x10, 0x20, 0x99, 0x30, 0x40), REFERENCE) is None


def test_a_fixed_defect_says_to_remove_its_entry():
    assert defect_status(DEFECT, frames(*REFERENCE), REFERENCE).startswith("fixed")


def test_a_defect_that_moved_says_where():
    status = defect_status(DEFECT, frames(0x10, 0x99, 0x30, 0x40), REFERENCE)
    assert status.startswith("changed") and "now 1, recorded 2" in status


def test_missing_and_extra_frames_count_as_wrong():
    assert first_wrong_frame(frames(0x10, 0x20), REFERENCE) == 2
    assert first_wrong_frame(frames(*REFERENCE, 0x50), REFERENCE) == 4
    assert first_wrong_frame(frames(*REFERENCE), REFERENCE) is None


def test_entries_are_found_by_program_and_role():
    for defect in KNOWN_DEFECTS:
        assert known_defect(defect.program, defect.role) is defect
    assert known_defect("fp_chain", "fp_sleep") is None
