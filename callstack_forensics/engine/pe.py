"""PE images as they are mapped in memory (read by RVA), for unwinding and symbols.

pefile parses the headers (it is hardened against hostile header fields); the
export directory and the ``.pdata`` table are read here by RVA through a
reader, because pefile needs a file layout and the image in memory is mapped
and may have holes (pages not present). Reading only those two tables keeps a
module's parse to a few pages instead of its whole SizeOfImage.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import pefile

from ..memory import MemoryMissing

MAX_EXPORTS = 65536
MAX_RUNTIME_FUNCTIONS = 1 << 20
MAX_NAME = 512
# UnwindData with bit 0 set points (RVA & ~1) at another RUNTIME_FUNCTION that holds the unwind
# info for both (Microsoft's linkers emitted these up to Windows 7/8: 1,562 in 7601 ntdll).
RUNTIME_FUNCTION_INDIRECT = 1
MAX_INDIRECTION = 8
IMAGE_SCN_MEM_EXECUTE = 0x20000000
IMAGE_SCN_CNT_CODE = 0x20


class ImageError(Exception):
    """The bytes at a module's base are not a PE image we can use."""


class RvaReader(Protocol):
    def __call__(self, rva: int, size: int) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    rva: int
    size: int
    characteristics: int

    @property
    def executable(self) -> bool:
        return bool(self.characteristics & (IMAGE_SCN_MEM_EXECUTE | IMAGE_SCN_CNT_CODE))

    def contains(self, rva: int) -> bool:
        return self.rva <= rva < self.rva + self.size


@dataclass(frozen=True, slots=True)
class Export:
    name: str
    rva: int
    ordinal: int


@dataclass(frozen=True, slots=True)
class RuntimeFunction:
    """One ``.pdata`` entry (IMAGE_RUNTIME_FUNCTION_ENTRY), RVAs relative to the image base."""

    begin: int
    end: int
    unwind: int

    def contains(self, rva: int) -> bool:
        return self.begin <= rva < self.end

    @property
    def indirect(self) -> bool:
        """UnwindData names another ``.pdata`` entry, not an UNWIND_INFO."""
        return bool(self.unwind & RUNTIME_FUNCTION_INDIRECT)


@dataclass(slots=True)
class PeImage:
    """The parts of a mapped PE the stack engine needs."""

    reader: RvaReader
    size_of_image: int
    timestamp: int
    machine: int
    is_64: bool
    sections: list[Section]
    exports: list[Export] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _export_rvas: list[int] = field(default_factory=list)
    _rf_begins: list[int] = field(default_factory=list)
    _rf: list[RuntimeFunction] = field(default_factory=list)
    unwind_cache: dict = field(default_factory=dict)
    _primaries: dict[int, RuntimeFunction] = field(default_factory=dict)
    # What depends on this build and an RVA alone, worked out once: the image is shared by every
    # process that maps it, and the same return addresses recur in thousands of threads.
    export_cache: dict[int, "Export | None"] = field(default_factory=dict)
    root_cache: dict[RuntimeFunction, RuntimeFunction] = field(default_factory=dict)

    # ---- lookups -----------------------------------------------------------

    def section_at(self, rva: int) -> Section | None:
        for section in self.sections:
            if section.contains(rva):
                return section
        return None

    def is_code(self, rva: int) -> bool:
        section = self.section_at(rva)
        return section is not None and section.executable

    @property
    def has_unwind_data(self) -> bool:
        return bool(self._rf)

    @property
    def runtime_functions(self) -> list[RuntimeFunction]:
        return self._rf

    def function_at(self, rva: int) -> RuntimeFunction | None:
        """The ``.pdata`` entry covering ``rva`` (binary search), or None for a leaf."""
        i = bisect.bisect_right(self._rf_begins, rva) - 1
        if i >= 0 and self._rf[i].contains(rva):
            return self._rf[i]
        return None

    def primary_entry(self, entry: RuntimeFunction) -> RuntimeFunction:
        """The entry whose UnwindData is the UNWIND_INFO for ``entry``: ``entry`` itself, or the
        entry its indirect UnwindData points at (followed as RtlLookupFunctionEntry does, with a
        loop guard). Raises :class:`ImageError` for a loop or an entry that is not present."""
        if not entry.indirect:
            return entry
        found = self._primaries.get(entry.unwind)
        if found is not None:
            return found
        seen: set[int] = set()
        current = entry
        while current.indirect:
            at = current.unwind & ~RUNTIME_FUNCTION_INDIRECT
            if at in seen or len(seen) >= MAX_INDIRECTION:
                raise ImageError(f"indirect .pdata entries loop at rva {at:#x}")
            seen.add(at)
            try:
                current = RuntimeFunction(*struct.unpack("<III", self.read(at, 12)))
            except MemoryMissing as exc:
                raise ImageError(f"indirect .pdata entry at rva {at:#x} not present") from exc
        self._primaries[entry.unwind] = current
        return current

    def function_begins_between(self, lo: int, hi: int) -> bool:
        """Does a ``.pdata`` function start in ``(lo, hi]``?"""
        i = bisect.bisect_right(self._rf_begins, lo)
        return i < len(self._rf_begins) and self._rf_begins[i] <= hi

    def export_at_or_before(self, rva: int) -> Export | None:
        i = bisect.bisect_right(self._export_rvas, rva) - 1
        return self.exports[i] if i >= 0 else None

    def export_at(self, rva: int) -> Export | None:
        """The first export (in table order, which is by RVA) at exactly ``rva``, or None."""
        i = bisect.bisect_left(self._export_rvas, rva)
        return self.exports[i] if i < len(self._export_rvas) and self._export_rvas[i] == rva else None

    def export_named(self, name: str) -> Export | None:
        for export in self.exports:
            if export.name == name:
                return export
        return None

    def read(self, rva: int, size: int) -> bytes:
        if rva < 0 or rva + size > max(self.size_of_image, 0x1000):
            raise MemoryMissing(rva, "outside the image")
        return self.reader(rva, size)


def parse_image(reader: RvaReader, header_size: int = 0x1000) -> PeImage:
    """Parse the headers, the export table and ``.pdata`` of a mapped image."""
    try:
        header = reader(0, header_size)
    except MemoryMissing as exc:
        raise ImageError(f"PE header not present ({exc})") from exc
    if header[:2] != b"MZ":
        raise ImageError("no MZ signature")
    try:
        pe = pefile.PE(data=header, fast_load=True)
    except Exception as exc:  # pefile raises PEFormatError and, on hostile input, others
        raise ImageError(f"bad PE header: {exc}") from exc
    opt = pe.OPTIONAL_HEADER
    is_64 = opt.Magic == 0x20B
    image = PeImage(
        reader=reader,
        size_of_image=int(opt.SizeOfImage),
        timestamp=int(pe.FILE_HEADER.TimeDateStamp),
        machine=int(pe.FILE_HEADER.Machine),
        is_64=is_64,
        sections=_sections(pe),
    )
    overlapping = _overlapping(image.sections)
    if overlapping:
        # legal for the loader only in odd cases, common in crafted images; lookups take the
        # first section listed, and the analyst should know the layout is not a normal one
        image.notes.append(f"sections overlap ({overlapping})")
    dirs = opt.DATA_DIRECTORY
    if len(dirs) > 0:
        _load_exports(image, dirs[0].VirtualAddress, dirs[0].Size)
    if is_64 and len(dirs) > 3:
        _load_pdata(image, dirs[3].VirtualAddress, dirs[3].Size)
    return image


def _sections(pe: pefile.PE) -> list[Section]:
    out = []
    for s in pe.sections[:96]:
        name = s.Name.rstrip(b"\0").decode("latin-1", "replace")
        size = max(int(s.Misc_VirtualSize), int(s.SizeOfRawData))
        out.append(Section(name, int(s.VirtualAddress), size, int(s.Characteristics)))
    return out


def _overlapping(sections: list[Section]) -> str | None:
    ordered = sorted((s for s in sections if s.size), key=lambda s: s.rva)
    for before, after in zip(ordered, ordered[1:]):
        if after.rva < before.rva + before.size:
            return f"{before.name} and {after.name}"
    return None


def _read_cstring(reader: RvaReader, rva: int) -> str | None:
    try:
        raw = reader(rva, MAX_NAME)
    except MemoryMissing:
        # the name may sit near the end of the last present page
        raw = b""
        for size in (256, 64, 16):
            try:
                raw = reader(rva, size)
                break
            except MemoryMissing:
                continue
    end = raw.find(b"\0")
    if end <= 0:
        return None
    return raw[:end].decode("latin-1", "replace")


def _load_exports(image: PeImage, rva: int, size: int) -> None:
    if not rva or not size:
        return
    try:
        d = struct.unpack("<IIHHIIIIIII", image.read(rva, 40))
    except MemoryMissing:
        image.notes.append("export directory not present")
        return
    base, n_funcs, n_names, a_funcs, a_names, a_ords = d[5], d[6], d[7], d[8], d[9], d[10]
    if n_funcs > MAX_EXPORTS or n_names > MAX_EXPORTS:
        image.notes.append(f"export counts capped ({n_funcs} functions, {n_names} names)")
        n_funcs, n_names = min(n_funcs, MAX_EXPORTS), min(n_names, MAX_EXPORTS)
    try:
        funcs = struct.unpack(f"<{n_funcs}I", image.read(a_funcs, 4 * n_funcs))
        names = struct.unpack(f"<{n_names}I", image.read(a_names, 4 * n_names))
        ords = struct.unpack(f"<{n_names}H", image.read(a_ords, 2 * n_names))
    except (MemoryMissing, struct.error):
        image.notes.append("export tables not present")
        return
    named: dict[int, str] = {}
    for name_rva, ordinal in zip(names, ords):
        if ordinal < n_funcs and ordinal not in named:
            name = _read_cstring(image.read, name_rva)
            if name:
                named[ordinal] = name
    exports = []
    for index, func_rva in enumerate(funcs):
        if not func_rva or rva <= func_rva < rva + size:  # empty slot or forwarder string
            continue
        if not image.is_code(func_rva):  # data export: not a code symbol
            continue
        exports.append(Export(named.get(index, f"#{base + index}"), func_rva, base + index))
    exports.sort(key=lambda e: (e.rva, e.name.startswith("#")))
    image.exports = exports
    image._export_rvas = [e.rva for e in exports]


def _load_pdata(image: PeImage, rva: int, size: int) -> None:
    # .pdata lies inside the image: a directory size past SizeOfImage is cut there rather than
    # read as a million absent entries
    count = min(min(size, max(image.size_of_image - rva, 0)) // 12, MAX_RUNTIME_FUNCTIONS)
    if not rva or not count:
        return
    raw = bytearray()
    step = 0x1000 - (0x1000 % 12)
    missing = 0
    for off in range(0, count * 12, step):
        chunk = min(step, count * 12 - off)
        try:
            raw += image.read(rva + off, chunk)
        except MemoryMissing:
            missing += 1
            raw += b"\0" * chunk  # zero entries are dropped below
    if missing:
        image.notes.append(f".pdata partly not present ({missing} chunks)")
    entries: list[RuntimeFunction] = []
    dropped = 0
    for b, e, u in struct.iter_unpack("<III", bytes(raw)):
        if e > b and b < image.size_of_image:
            entries.append(RuntimeFunction(b, e, u))
        elif b > e or b >= image.size_of_image:
            # no lookup can use these; empty entries (begin == end, which linkers do emit, Wine's
            # jscript.dll has two) and absent chunks' zeros cover nothing and are dropped silently
            dropped += 1
    if dropped:
        image.notes.append(f".pdata entries dropped ({dropped} with begin > end or outside the image)")
    if any(entries[i].begin > entries[i + 1].begin for i in range(len(entries) - 1)):
        entries.sort(key=lambda f: f.begin)
        image.notes.append(".pdata not sorted")
    image._rf = entries
    image._rf_begins = [f.begin for f in entries]


def section_protection(characteristics: int) -> str:
    """Elastic's protection spelling for a section's page protection (R/W/X flags)."""
    read = "R" if characteristics & 0x40000000 else "-"
    write = "W" if characteristics & 0x80000000 else "-"
    execute = "X" if characteristics & IMAGE_SCN_MEM_EXECUTE else "-"
    return read + write + execute


def header_layout(header: bytes) -> tuple[int, list[Section]]:
    """(SizeOfHeaders, sections) from the first page of a mapped image; ImageError if not a PE.

    A VAD records one protection for a whole image mapping (EXECUTE_WRITECOPY); the pages
    themselves carry their section's protection, which is what a frame should report.
    """
    if header[:2] != b"MZ":
        raise ImageError("no MZ signature")
    try:
        pe = pefile.PE(data=header, fast_load=True)
    except Exception as exc:  # hostile headers raise more than PEFormatError
        raise ImageError(f"bad PE header: {exc}") from exc
    return int(pe.OPTIONAL_HEADER.SizeOfHeaders), _sections(pe)


def file_reader(path: Path) -> tuple[RvaReader, int]:
    """A reader over a PE file on disk, mapped by sections (for tests and the forge)."""
    pe = pefile.PE(str(path), fast_load=True)
    mapped = pe.get_memory_mapped_image()
    size = len(mapped)

    def read(rva: int, n: int) -> bytes:
        if rva < 0 or rva + n > size:
            raise MemoryMissing(rva, "outside the file image")
        return mapped[rva : rva + n]

    return read, int(pe.OPTIONAL_HEADER.ImageBase)


def image_from_file(path: Path) -> PeImage:
    reader, _base = file_reader(path)
    return parse_image(reader)


def memory_reader(read: Callable[[int, int], bytes], base: int) -> RvaReader:
    def rva_read(rva: int, n: int) -> bytes:
        return read(base + rva, n)

    return rva_read
