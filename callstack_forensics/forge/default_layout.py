"""The forge's default kernel layout: Windows 10 22H2 (19041.3570), a real kernel's symbol table.

A made-up layout only its authors' readers could read proved little; with the real table, every
tool that knows this build (Volatility with the table, MemProcFS from its own offsets database)
reads the default images. The table ships in ``isf/windows/ntkrnlmp.pdb/`` with its licence
(BSD-3-Clause, JPCERT/CC's Windows-Symbol-Tables) beside it; it is the only one the package ships.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .layout import Layout

DEFAULT_IDENTIFIER = "606FF669409B00F7FC8C61A9C1670129-1"


def default_isf_path() -> Path:
    return Path(__file__).resolve().parent / "isf" / "windows" / "ntkrnlmp.pdb" / f"{DEFAULT_IDENTIFIER}.json.xz"


@lru_cache(maxsize=1)
def default_layout() -> Layout:
    """The shipped table, parsed once per process (0.4 s)."""
    return Layout.load(default_isf_path())
