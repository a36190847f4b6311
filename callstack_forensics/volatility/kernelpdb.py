"""The kernel's PDB identity read from a raw image's bytes, to name a missing symbol table.

Volatility's own error when it finds no symbol table is a requirement path; a responder
needs the PDB name, GUID and age to make or fetch the table. This reads them from the
kernel's CodeView record without Volatility, so it works where Volatility gave up.
"""

from __future__ import annotations

import mmap
import re
from dataclasses import dataclass
from pathlib import Path

# CodeView RSDS record of a kernel: GUID (16 bytes), age (4), then the PDB name.
KERNEL_RSDS = re.compile(rb"RSDS(.{16})(.{4})((?:ntkrnlmp|ntoskrnl|ntkrnlpa|ntkrpamp)\.pdb)\x00", re.S)


@dataclass(frozen=True, slots=True)
class KernelPdb:
    """The kernel's PDB identity, as Volatility names its symbol table files."""

    name: str
    guid: str
    age: int

    @property
    def identifier(self) -> str:
        return f"{self.guid}-{self.age:X}"

    @property
    def symbol_file(self) -> str:
        return f"windows/{self.name}/{self.identifier}.json.xz"


def find_kernel_pdb(path: Path) -> KernelPdb | None:
    """The first kernel CodeView record in the raw file (a physical image holds the kernel's
    headers in plain bytes), or None when there is none: then it is no Windows image."""
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            found = KERNEL_RSDS.search(data)
            groups = found.groups() if found is not None else None
    except (OSError, ValueError):
        return None
    if groups is None:
        return None
    raw_guid, raw_age, name = groups
    d1, d2, d3 = int.from_bytes(raw_guid[:4], "little"), int.from_bytes(raw_guid[4:6], "little"), int.from_bytes(raw_guid[6:8], "little")
    guid = f"{d1:08X}{d2:04X}{d3:04X}{raw_guid[8:].hex().upper()}"
    return KernelPdb(name.decode(), guid, int.from_bytes(raw_age, "little"))
