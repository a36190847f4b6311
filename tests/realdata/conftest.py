"""Real Windows minidumps from public crash-reporter test suites (../shared/realdata, as they came).

They are the only material here that no one in this project made: normal dumps without module
images, written by Breakpad and Crashpad on real Windows 7 to 11 machines. The tests never
skip for want of them: CI has ../shared beside the clone, and a missing folder is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from callstack_forensics.memory.minidump import MinidumpError, MinidumpMemory

REPO = Path(__file__).resolve().parents[2]
REALDATA = Path(os.environ.get("SHARED", REPO.parent / "shared")) / "realdata"


def real_dumps() -> list[Path]:
    if not REALDATA.is_dir():
        pytest.fail(f"{REALDATA} is missing: the real-material tests need ../shared beside the checkout")
    return sorted(REALDATA.glob("*.dmp"))


def windows_dumps() -> list[Path]:
    """The dumps of Windows processes (the others must be refused)."""
    out = []
    for path in real_dumps():
        try:
            MinidumpMemory(path).close()
        except MinidumpError:
            continue
        out.append(path)
    return out


def dump_named(stem: str) -> Path:
    path = REALDATA / f"{stem}.dmp"
    if not path.is_file():
        pytest.fail(f"{path} is missing from ../shared/realdata")
    return path
