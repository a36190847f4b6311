"""Shared fixtures for the forge tests: the ten real kernel ISFs (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("SHARED", REPO.parent / "shared"))
REAL_ISF_DIR = SHARED / "isf" / "windows" / "ntkrnlmp.pdb"


def real_isfs() -> list[Path]:
    return sorted(REAL_ISF_DIR.glob("*.json.xz")) if REAL_ISF_DIR.is_dir() else []


@pytest.fixture(params=real_isfs() or [None], ids=lambda p: p.name[:8] if p else "none")
def real_isf(request) -> Path:
    if request.param is None:
        pytest.skip(f"no real kernel ISFs in {REAL_ISF_DIR}")
    return request.param
