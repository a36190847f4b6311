"""Which .pdata entry of a PE file holds an address, and the prolog offsets of its unwind codes.

The LLDB comparison (tests/wine/lldb_compare.py) needs this to say *why*
LLDB's unwinding stops where it does; it reads the module files LLDB itself
loaded, with pefile, independently of the engine's own PE reader (the thing
under test).
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pefile

UNW_FLAG_CHAININFO = 0x4
UWOP_EPILOG = 6  # version 2 only: describes an epilog, its offset is not a prolog offset
# Unwind codes that take two or three slots (UWOP_ALLOC_LARGE's size depends on its op info).
_EXTRA_SLOTS = {1: None, 4: 1, 5: 2, 8: 1, 9: 2}


@dataclass(frozen=True)
class FunctionEntry:
    """One RUNTIME_FUNCTION (RVAs), the offsets in its prolog where its unwind codes take effect, its first bytes."""

    begin: int
    end: int
    code_offsets: tuple[int, ...]
    chained: bool
    first_bytes: bytes


@dataclass
class PdataFile:
    """The sorted .pdata entries of one PE file; entries are decoded on demand."""

    path: Path
    pe: pefile.PE
    begins: list[int] = field(default_factory=list)
    entries: list[tuple[int, int, int]] = field(default_factory=list)

    @classmethod
    def open(cls, path: Path) -> "PdataFile":
        pe = pefile.PE(str(path), fast_load=True)
        directory = pe.OPTIONAL_HEADER.DATA_DIRECTORY[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_EXCEPTION"]]
        raw = pe.get_data(directory.VirtualAddress, directory.Size) if directory.Size else b""
        entries = sorted(e for e in struct.iter_unpack("<III", raw[: len(raw) // 12 * 12]) if e[1] > e[0])
        return cls(path, pe, [e[0] for e in entries], entries)

    def function_at(self, rva: int) -> FunctionEntry | None:
        """The entry whose [begin, end) holds ``rva``, or None (no unwind data there)."""
        i = bisect.bisect_right(self.begins, rva) - 1
        if i < 0 or not self.entries[i][0] <= rva < self.entries[i][1]:
            return None
        begin, end, unwind = self.entries[i]
        for _ in range(8):  # an indirect entry (bit 0) names another RUNTIME_FUNCTION; bounded
            if not unwind & 1:
                break
            _, _, unwind = struct.unpack("<III", self.pe.get_data(unwind & ~1, 12))
        return FunctionEntry(begin, end, *self._codes(unwind), self.pe.get_data(begin, 8))

    def _codes(self, unwind: int) -> tuple[tuple[int, ...], bool]:
        version_flags, _, count, _ = self.pe.get_data(unwind, 4)
        slots = self.pe.get_data(unwind + 4, 2 * count)
        offsets, i = [], 0
        while i < count:
            offset, op_info = slots[2 * i], slots[2 * i + 1]
            op, info = op_info & 0xF, op_info >> 4
            if not (op == UWOP_EPILOG and version_flags & 7 == 2):
                offsets.append(offset)
            extra = _EXTRA_SLOTS.get(op, 0)
            i += 1 + ((1 if info == 0 else 2) if extra is None else extra)
        return tuple(offsets), bool((version_flags >> 3) & UNW_FLAG_CHAININFO)


@dataclass
class PdataFiles:
    """PdataFile per path, opened once per comparison run."""

    opened: dict[Path, PdataFile | None] = field(default_factory=dict)

    def get(self, path: Path) -> PdataFile | None:
        if path not in self.opened:
            try:
                self.opened[path] = PdataFile.open(path)
            except (OSError, pefile.PEFormatError):
                self.opened[path] = None
        return self.opened[path]
