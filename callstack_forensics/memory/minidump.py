"""A user-mode minidump as a :class:`~callstack_forensics.memory.ProcessMemory`.

Responders hold minidumps (``procdump -ma``, Task Manager, WER) far more often
than full memory images, and the Wine ground-truth tests capture minidumps, so
the stack engine reads them through the same narrow interface as Volatility.

The reader is written against the documented layout (MINIDUMP_HEADER, the
stream directory and the standard streams) with :mod:`struct` only: the
third-party ``minidump`` package stops at Wine's private stream 0xFFF0, while
this reader skips every stream type it does not know.

What it trusts and what it refuses:

* Every offset and count is checked against the file before it is used; a
  structure that does not fit raises :class:`MinidumpError` naming it, never an
  IndexError or struct.error from deep inside.
* Memory absent from the dump reads as :class:`MemoryMissing`, never zeros.
* Protections come only from a MemoryInfoList. Without one (Wine's full dumps
  have none) regions still cover what the dump holds, with protection
  ``Unknown``: a protection is never guessed.
* A thread whose context cannot be read keeps its place in :meth:`threads`
  with ``registers=None`` and a ``note`` saying why.
"""

from __future__ import annotations

import bisect
import datetime as dt
import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .interface import (
    page_protection,
    UNKNOWN_PROTECTION,
    ExceptionInfo,
    MemoryMissing,
    Module,
    ProcessInfo,
    ProcessMemory,
    Region,
    RegionKind,
    ThreadInfo,
)
from .minidump_debug import decode_debug_registers
from .wow64context import read_wow64_context

SIGNATURE = 0x504D444D  # "MDMP"

# Stream types (MINIDUMP_STREAM_TYPE) this reader uses; all others are skipped.
THREAD_LIST = 3
MODULE_LIST = 4
MEMORY_LIST = 5
EXCEPTION = 6
SYSTEM_INFO = 7
THREAD_EX_LIST = 8
MEMORY64_LIST = 9
MISC_INFO = 15
MEMORY_INFO_LIST = 16
THREAD_INFO_LIST = 17

ARCH_X86 = 0
ARCH_AMD64 = 9

# MINIDUMP_SYSTEM_INFO.PlatformId: Windows writes VER_PLATFORM_WIN32_NT; Breakpad and Crashpad
# write their own ids for the other systems they dump (minidump_format.h).
PLATFORM_WIN32_NT = 2
PLATFORM_NAMES = {
    0: "Win32s", 1: "Windows 9x", 3: "Windows CE", 0x8000: "Unix", 0x8101: "macOS", 0x8102: "iOS",
    0x8201: "Linux", 0x8202: "Solaris", 0x8203: "Android", 0x8204: "PS3", 0x8205: "Native Client",
    0x8206: "Fuchsia",
}  # fmt: skip

# Upper bounds that no genuine dump reaches; beyond them a count is hostile.
MAX_STREAMS = 1 << 16
MAX_NAME_BYTES = 1 << 16

MEM_COMMIT = 0x1000
MEM_RESERVE = 0x2000
MEM_FREE = 0x10000
MEM_PRIVATE = 0x20000
MEM_MAPPED = 0x40000
MEM_IMAGE = 0x1000000

_KINDS = {MEM_IMAGE: RegionKind.IMAGE, MEM_MAPPED: RegionKind.MAPPED, MEM_PRIVATE: RegionKind.PRIVATE}


class MinidumpError(Exception):
    """The file is not a minidump this reader can trust (truncated, bad RVA, absurd count)."""


# ---- bounds-checked access to the file --------------------------------------


class _Blob:
    """The dump's bytes with every access checked against the end of the file."""

    def __init__(self, data: bytes | mmap.mmap) -> None:
        self.data = data
        self.size = len(data)

    def check(self, offset: int, size: int, what: str) -> None:
        if offset < 0 or size < 0 or offset + size > self.size:
            raise MinidumpError(
                f"{what}: {size} bytes at file offset {offset:#x} lie past the end of the "
                f"file ({self.size:#x} bytes); truncated or corrupt dump"
            )

    def unpack(self, fmt: str, offset: int, what: str) -> tuple:
        self.check(offset, struct.calcsize(fmt), what)
        return struct.unpack_from(fmt, self.data, offset)

    def bytes(self, offset: int, size: int, what: str) -> bytes:
        self.check(offset, size, what)
        return bytes(self.data[offset : offset + size])


@dataclass(frozen=True, slots=True)
class Stream:
    """One entry of the stream directory."""

    type: int
    rva: int
    size: int


def _table(blob: _Blob, stream: Stream, header: int, count: int, entry: int, what: str) -> int:
    """Check that ``count`` entries of ``entry`` bytes after ``header`` fit the stream; return their offset."""
    need = header + count * entry
    if need > stream.size:
        raise MinidumpError(
            f"{what}: {count} entries of {entry} bytes need {need} bytes but the stream holds {stream.size}"
        )
    blob.check(stream.rva, need, what)
    return stream.rva + header


def read_directory(blob: _Blob) -> list[Stream]:
    """The header and the stream directory (entries of type 0, UnusedStream, dropped)."""
    if blob.size < 32:
        raise MinidumpError(f"file too short for a minidump header ({blob.size} bytes)")
    signature, _version, count, dir_rva = blob.unpack("<IIII", 0, "header")
    if signature != SIGNATURE:
        raise MinidumpError(f"not a minidump: signature {signature:#010x}, expected 'MDMP'")
    if count > MAX_STREAMS:
        raise MinidumpError(f"stream directory claims {count} streams; refusing")
    blob.check(dir_rva, count * 12, "stream directory")
    streams = []
    for i in range(count):
        kind, size, rva = struct.unpack_from("<III", blob.data, dir_rva + 12 * i)
        if kind == 0:
            continue
        streams.append(Stream(kind, rva, size))
    return streams


# ---- streams ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemoryRange:
    """Bytes of the process held by the dump: ``size`` bytes at ``start``, found at file ``offset``."""

    start: int
    size: int
    offset: int

    @property
    def end(self) -> int:
        return self.start + self.size


@dataclass(frozen=True, slots=True)
class MemoryInfo:
    """One MINIDUMP_MEMORY_INFO run."""

    base: int
    allocation_base: int
    allocation_protect: int
    size: int
    state: int
    protect: int
    type: int

    @property
    def end(self) -> int:
        return self.base + self.size


@dataclass(frozen=True, slots=True)
class RawThread:
    """A MINIDUMP_THREAD (or THREAD_EX) as written, before its context is decoded."""

    tid: int
    suspend_count: int
    priority_class: int
    priority: int
    teb: int
    stack: MemoryRange | None
    context_rva: int
    context_size: int


def read_system_info(blob: _Blob, stream: Stream) -> int:
    """The processor architecture (PROCESSOR_ARCHITECTURE_*)."""
    _table(blob, stream, 2, 0, 0, "SystemInfo stream")
    return blob.unpack("<H", stream.rva, "SystemInfo stream")[0]


def check_platform(blob: _Blob, stream: Stream) -> None:
    """Refuse a dump of another system: Breakpad and Crashpad write the same format on Linux,
    macOS and Android, where TEBs, ntdll and PE unwind data do not exist."""
    if stream.size < 24:
        return  # too short to say; the architecture check still applies
    (platform,) = blob.unpack("<I", stream.rva + 20, "SystemInfo stream")
    if platform == PLATFORM_WIN32_NT:
        return
    name = PLATFORM_NAMES.get(platform, "an unknown system")
    raise MinidumpError(
        f"a minidump of {name} (SystemInfo PlatformId {platform:#x}), not of Windows: only Windows "
        "process dumps can be analysed"
    )


def read_windows_version(blob: _Blob, stream: Stream) -> str | None:
    """``Windows MAJOR.MINOR.BUILD`` from MINIDUMP_SYSTEM_INFO, for the report's header."""
    if stream.size < 20:
        return None
    major, minor, build = blob.unpack("<III", stream.rva + 8, "SystemInfo stream")
    return f"Windows {major}.{minor}.{build}"


def read_capture_time(blob: _Blob) -> dt.datetime | None:
    """MINIDUMP_HEADER.TimeDateStamp: when the dump was written (seconds since 1970, UTC)."""
    (stamp,) = blob.unpack("<I", 20, "MINIDUMP_HEADER")
    return dt.datetime.fromtimestamp(stamp, dt.timezone.utc) if stamp else None


def read_misc_info(blob: _Blob, stream: Stream) -> int | None:
    """The process id from MINIDUMP_MISC_INFO, when its flag says it is valid."""
    if stream.size < 12:
        return None
    _size, flags, pid = blob.unpack("<III", stream.rva, "MiscInfo stream")
    return pid if flags & 1 else None


def read_string(blob: _Blob, rva: int, what: str) -> str:
    """A MINIDUMP_STRING (length in bytes, then UTF-16LE)."""
    (length,) = blob.unpack("<I", rva, what)
    if length > MAX_NAME_BYTES:
        raise MinidumpError(f"{what}: string of {length} bytes; refusing")
    return blob.bytes(rva + 4, length, what).decode("utf-16-le", errors="replace")


def read_modules(blob: _Blob, stream: Stream) -> list[Module]:
    """MINIDUMP_MODULE entries (108 bytes each, packed)."""
    (count,) = blob.unpack("<I", stream.rva, "ModuleList stream")
    offset = _table(blob, stream, 4, count, 108, "ModuleList stream")
    modules = []
    for i in range(count):
        base, size, checksum, timestamp, name_rva = struct.unpack_from("<QIIII", blob.data, offset + 108 * i)
        name = read_string(blob, name_rva, f"name of module {i}")
        modules.append(Module(base=base, size=size, path=name, timestamp=timestamp, checksum=checksum))
    return modules


def read_threads(blob: _Blob, stream: Stream, extended: bool) -> list[RawThread]:
    """MINIDUMP_THREAD (48 bytes) or MINIDUMP_THREAD_EX (64 bytes) entries."""
    what = "ThreadExList stream" if extended else "ThreadList stream"
    entry = 64 if extended else 48
    (count,) = blob.unpack("<I", stream.rva, what)
    offset = _table(blob, stream, 4, count, entry, what)
    threads = []
    for i in range(count):
        fields = struct.unpack_from("<IIIIQQIIII", blob.data, offset + entry * i)
        tid, suspend, prio_class, prio, teb, stack_start, stack_size, stack_rva, ctx_size, ctx_rva = fields
        stack = MemoryRange(stack_start, stack_size, stack_rva) if stack_size else None
        threads.append(RawThread(tid, suspend, prio_class, prio, teb, stack, ctx_rva, ctx_size))
    return threads


def read_memory_list(blob: _Blob, stream: Stream) -> list[MemoryRange]:
    """MINIDUMP_MEMORY_LIST: each descriptor has its own RVA."""
    (count,) = blob.unpack("<I", stream.rva, "MemoryList stream")
    offset = _table(blob, stream, 4, count, 16, "MemoryList stream")
    ranges = []
    for i in range(count):
        start, size, rva = struct.unpack_from("<QII", blob.data, offset + 16 * i)
        ranges.append(MemoryRange(start, size, rva))
    return ranges


def read_memory64_list(blob: _Blob, stream: Stream) -> list[MemoryRange]:
    """MINIDUMP_MEMORY64_LIST: the data of all ranges follows BaseRva back to back."""
    count, base_rva = blob.unpack("<QQ", stream.rva, "Memory64List stream")
    offset = _table(blob, stream, 16, count, 16, "Memory64List stream")
    ranges = []
    cursor = base_rva
    for i in range(count):
        start, size = struct.unpack_from("<QQ", blob.data, offset + 16 * i)
        ranges.append(MemoryRange(start, size, cursor))
        cursor += size
    return ranges


def read_memory_info(blob: _Blob, stream: Stream) -> list[MemoryInfo]:
    """MINIDUMP_MEMORY_INFO_LIST, honouring the header's own header and entry sizes."""
    header_size, entry_size, count = blob.unpack("<IIQ", stream.rva, "MemoryInfoList stream")
    if header_size < 16 or entry_size < 48:
        raise MinidumpError(f"MemoryInfoList stream: header {header_size} / entry {entry_size} bytes too small")
    offset = _table(blob, stream, header_size, count, entry_size, "MemoryInfoList stream")
    infos = []
    for i in range(count):
        base, alloc_base, alloc_protect, _a, size, state, protect, kind, _b = struct.unpack_from(
            "<QQIIQIIII", blob.data, offset + entry_size * i
        )
        infos.append(MemoryInfo(base, alloc_base, alloc_protect, size, state, protect, kind))
    return infos


def read_thread_start_addresses(blob: _Blob, stream: Stream) -> dict[int, int]:
    """tid -> StartAddress from MINIDUMP_THREAD_INFO_LIST."""
    header_size, entry_size, count = blob.unpack("<III", stream.rva, "ThreadInfoList stream")
    if header_size < 12 or entry_size < 64:
        raise MinidumpError(f"ThreadInfoList stream: header {header_size} / entry {entry_size} bytes too small")
    offset = _table(blob, stream, header_size, count, entry_size, "ThreadInfoList stream")
    starts = {}
    for i in range(count):
        tid = struct.unpack_from("<I", blob.data, offset + entry_size * i)[0]
        (start,) = struct.unpack_from("<Q", blob.data, offset + entry_size * i + 48)
        starts[tid] = start
    return starts


@dataclass(frozen=True, slots=True)
class RawException:
    """MINIDUMP_EXCEPTION_STREAM as written: the thread, the record, where its context lies."""

    tid: int
    code: int
    flags: int
    address: int
    parameters: tuple[int, ...]
    context_rva: int
    context_size: int


def read_exception(blob: _Blob, stream: Stream) -> RawException:
    """The exception stream (168 bytes: thread id, MINIDUMP_EXCEPTION, context location)."""
    _table(blob, stream, 168, 0, 0, "Exception stream")
    tid, = blob.unpack("<I", stream.rva, "Exception stream")
    code, flags, _record, address, count = blob.unpack("<IIQQI", stream.rva + 8, "Exception stream")
    params = blob.unpack("<15Q", stream.rva + 40, "Exception stream")[: min(count, 15)]
    size, rva = blob.unpack("<II", stream.rva + 160, "Exception stream")
    return RawException(tid, code, flags, address, tuple(params), rva, size)


# ---- thread contexts ------------------------------------------------------------

# Offsets of the general registers in the x64 CONTEXT (1232 bytes).
_X64_REGS = {
    "rax": 0x78, "rcx": 0x80, "rdx": 0x88, "rbx": 0x90, "rsp": 0x98, "rbp": 0xA0,
    "rsi": 0xA8, "rdi": 0xB0, "r8": 0xB8, "r9": 0xC0, "r10": 0xC8, "r11": 0xD0,
    "r12": 0xD8, "r13": 0xE0, "r14": 0xE8, "r15": 0xF0, "rip": 0xF8,
}  # fmt: skip
_X64_CONTEXT_SIZE = 0x100  # everything up to and including Rip
_X64_CONTEXT_FLAG = 0x100000

# Offsets in the x86 CONTEXT (716 bytes).
_X86_REGS = {
    "edi": 0x9C, "esi": 0xA0, "ebx": 0xA4, "edx": 0xA8, "ecx": 0xAC, "eax": 0xB0,
    "ebp": 0xB4, "eip": 0xB8, "esp": 0xC4,
}  # fmt: skip
_X86_CONTEXT_SIZE = 0xCC
_X86_CONTEXT_FLAG = 0x10000
_CONTEXT_CONTROL = 0x1


def decode_context(blob: _Blob, thread: RawThread | RawException, arch: int) -> tuple[dict[str, int] | None, str | None]:
    """The general registers of a thread's (or an exception's) CONTEXT, or None and why not."""
    if arch == ARCH_AMD64:
        layout, need, fmt, flags_at, arch_flag = _X64_REGS, _X64_CONTEXT_SIZE, "<Q", 0x30, _X64_CONTEXT_FLAG
    elif arch == ARCH_X86:
        layout, need, fmt, flags_at, arch_flag = _X86_REGS, _X86_CONTEXT_SIZE, "<I", 0x0, _X86_CONTEXT_FLAG
    else:
        return None, f"unsupported processor architecture {arch}"
    if thread.context_size < need:
        return None, f"thread context is {thread.context_size} bytes, {need} needed"
    if thread.context_rva + need > blob.size:
        return None, f"thread context at file offset {thread.context_rva:#x} lies past the end of the file"
    (flags,) = struct.unpack_from("<I", blob.data, thread.context_rva + flags_at)
    if flags & arch_flag and not flags & _CONTEXT_CONTROL:
        return None, f"thread context lacks CONTEXT_CONTROL (flags {flags:#x})"
    regs = {name: struct.unpack_from(fmt, blob.data, thread.context_rva + off)[0] for name, off in layout.items()}
    return regs, None


# ---- the memory index -------------------------------------------------------------


class MemoryIndex:
    """The dump's memory ranges, sorted and non-overlapping, looked up by bisection."""

    def __init__(self, blob: _Blob, ranges: Iterable[MemoryRange]) -> None:
        self._blob = blob
        self.ranges = _normalise(blob, ranges)
        self._starts = [r.start for r in self.ranges]

    def read(self, address: int, size: int) -> bytes:
        if size < 0:
            raise ValueError(f"negative read size {size}")
        if size == 0:
            return b""
        if address < 0 or address + size > 1 << 64:
            raise MemoryMissing(address, "outside the address space")
        i = bisect.bisect_right(self._starts, address) - 1
        parts = []
        cursor, end = address, address + size
        while cursor < end:
            if i < 0 or i >= len(self.ranges) or not self.ranges[i].start <= cursor < self.ranges[i].end:
                raise MemoryMissing(cursor, "not in the dump")
            rng = self.ranges[i]
            take = min(end, rng.end) - cursor
            at = rng.offset + (cursor - rng.start)
            parts.append(self._blob.data[at : at + take])
            cursor += take
            i += 1
        return b"".join(parts)

    def contains(self, address: int) -> bool:
        i = bisect.bisect_right(self._starts, address) - 1
        return i >= 0 and address < self.ranges[i].end


def _normalise(blob: _Blob, ranges: Iterable[MemoryRange]) -> list[MemoryRange]:
    """Check each range against the file and the address space; trim overlaps (first wins)."""
    out: list[MemoryRange] = []
    for rng in sorted(ranges, key=lambda r: (r.start, -r.size)):
        if rng.size == 0:
            continue
        if rng.end > 1 << 64:
            raise MinidumpError(f"memory range at {rng.start:#x} of {rng.size:#x} bytes wraps the address space")
        blob.check(rng.offset, rng.size, f"memory range {rng.start:#x}-{rng.end:#x}")
        if out and rng.start < out[-1].end:
            overlap = out[-1].end - rng.start
            if overlap >= rng.size:
                continue
            rng = MemoryRange(rng.start + overlap, rng.size - overlap, rng.offset + overlap)
        out.append(rng)
    return out


# ---- regions --------------------------------------------------------------------------


class ModuleMap:
    """Modules by address, looked up by bisection (a hostile dump may list thousands).

    For an address, the module with the nearest preceding base counts if it
    contains the address; overlapping module entries (never written by a real
    dumper) are not searched further.
    """

    def __init__(self, modules: Sequence[Module]) -> None:
        self.modules = sorted(modules, key=lambda m: m.base)
        self._bases = [m.base for m in self.modules]
        self._edges = sorted({m.base for m in self.modules} | {m.end for m in self.modules})

    def at(self, address: int) -> Module | None:
        i = bisect.bisect_right(self._bases, address) - 1
        if i >= 0 and self.modules[i].contains(address):
            return self.modules[i]
        return None

    def edges_within(self, start: int, end: int) -> list[int]:
        """Module starts and ends strictly inside ``(start, end)``."""
        lo = bisect.bisect_right(self._edges, start)
        hi = bisect.bisect_left(self._edges, end)
        return self._edges[lo:hi]


def regions_from_memory_info(infos: Sequence[MemoryInfo], modules: ModuleMap) -> list[Region]:
    """One region per committed or reserved MEMORY_INFO run (free space is not a region).

    Reserved runs carry no page protection and read ``---``. ``private_executable_bytes``
    is the executable committed bytes of a private allocation; for an image a minidump
    cannot tell which pages went private (copy-on-write), so it stays None.
    """
    private_exec = _private_executable_bytes(infos)
    regions = []
    for info in infos:
        if info.state not in (MEM_COMMIT, MEM_RESERVE) or info.size == 0:
            continue
        kind = _KINDS.get(info.type, RegionKind.UNKNOWN)
        module = modules.at(info.base) if kind is RegionKind.IMAGE else None
        regions.append(
            Region(
                start=info.base,
                end=info.end,
                protection=page_protection(info.protect) if info.state == MEM_COMMIT else "---",
                kind=kind,
                path=module.path if module else None,
                allocation_base=info.allocation_base,
                private_executable_bytes=_private_bytes_of(kind, private_exec, info.allocation_base),
            )
        )
    return _sorted_disjoint(regions)


def _private_bytes_of(kind: RegionKind, totals: dict[int, int], allocation_base: int) -> int | None:
    if kind is RegionKind.PRIVATE:
        return totals.get(allocation_base, 0)
    return 0 if kind is RegionKind.MAPPED else None


def _private_executable_bytes(infos: Sequence[MemoryInfo]) -> dict[int, int]:
    totals: dict[int, int] = {}
    for info in infos:
        if info.state == MEM_COMMIT and info.type == MEM_PRIVATE and page_protection(info.protect)[2] == "X":
            totals[info.allocation_base] = totals.get(info.allocation_base, 0) + info.size
    return totals


def regions_from_ranges(ranges: Sequence[MemoryRange], modules: ModuleMap) -> list[Region]:
    """Regions for what the dump holds when it records no protections.

    Contiguous ranges are merged, then cut at module boundaries: the part inside a
    module is IMAGE (with the module's path), the rest UNKNOWN. Protection is always
    ``Unknown`` here.
    """
    merged: list[tuple[int, int]] = []
    for rng in ranges:
        if merged and rng.start == merged[-1][1]:
            merged[-1] = (merged[-1][0], rng.end)
        else:
            merged.append((rng.start, rng.end))
    regions = []
    for start, end in merged:
        cuts = [start, *modules.edges_within(start, end), end]
        regions.extend(_unknown_region(lo, hi, modules.at(lo)) for lo, hi in zip(cuts, cuts[1:]))
    return regions


def _unknown_region(start: int, end: int, module: Module | None) -> Region:
    return Region(
        start=start,
        end=end,
        protection=UNKNOWN_PROTECTION,
        kind=RegionKind.IMAGE if module else RegionKind.UNKNOWN,
        path=module.path if module else None,
        allocation_base=module.base if module else None,
    )


def _sorted_disjoint(regions: list[Region]) -> list[Region]:
    """Sorted by start; a run overlapping an earlier one (hostile list) is dropped."""
    out: list[Region] = []
    for region in sorted(regions, key=lambda r: (r.start, -r.end)):
        if not out or region.start >= out[-1].end:
            out.append(region)
    return out


# ---- the process --------------------------------------------------------------------


@dataclass(slots=True)
class _Streams:
    """The first stream of each type this reader uses."""

    by_type: dict[int, Stream] = field(default_factory=dict)

    @classmethod
    def of(cls, streams: Iterable[Stream]) -> _Streams:
        out = cls()
        for stream in streams:
            out.by_type.setdefault(stream.type, stream)
        return out

    def get(self, kind: int) -> Stream | None:
        return self.by_type.get(kind)


class MinidumpMemory(ProcessMemory):
    """A minidump file (or its bytes) read through the engine's memory interface.

    Parsing happens once, in the constructor; every structural problem raises
    :class:`MinidumpError` there. Use as a context manager, or call :meth:`close`,
    to release the file mapping.
    """

    def __init__(self, source: str | os.PathLike[str] | bytes, name: str | None = None) -> None:
        self._file = None
        self._map: mmap.mmap | None = None
        if isinstance(source, (bytes, bytearray)):
            data: bytes | mmap.mmap = bytes(source)
            self.path: str | None = None
        else:
            data = self._open(Path(source))
            self.path = str(source)
        try:
            self._parse(_Blob(data), name)
        except BaseException:
            self.close()
            raise

    def _open(self, path: Path) -> mmap.mmap:
        try:
            self._file = open(path, "rb")  # noqa: SIM115 - kept open for the mapping's lifetime
            size = os.fstat(self._file.fileno()).st_size
            if size == 0:
                raise MinidumpError(f"{path}: empty file")
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            self.close()
            raise MinidumpError(f"{path}: cannot open: {exc}") from exc
        except MinidumpError:
            self.close()
            raise
        return self._map

    def _parse(self, blob: _Blob, name: str | None) -> None:
        self._blob = blob
        self.streams = read_directory(blob)
        streams = _Streams.of(self.streams)
        system = streams.get(SYSTEM_INFO)
        if system is not None:
            check_platform(blob, system)
        self.architecture = self._architecture(blob, streams)
        system = streams.get(SYSTEM_INFO)
        self.windows_version = read_windows_version(blob, system) if system else None
        self.captured_at = read_capture_time(blob)
        self.pointer_size = 4 if self.architecture == ARCH_X86 else 8
        module_stream = streams.get(MODULE_LIST)
        written = read_modules(blob, module_stream) if module_stream else []
        self._modules = sorted(written, key=lambda m: m.base)
        raw_threads = self._raw_threads(blob, streams)
        self.memory = MemoryIndex(blob, self._ranges(blob, streams, raw_threads))
        self._regions = self._read_regions(blob, streams)
        starts_stream = streams.get(THREAD_INFO_LIST)
        starts = read_thread_start_addresses(blob, starts_stream) if starts_stream else {}
        self.exception = self._exception(blob, streams)
        # a 64-bit dump of a 32-bit process (Task Manager writes these): its threads' 32-bit
        # contexts are in their TEBs' WOW64 CPU areas
        self.is_wow64 = self.architecture == ARCH_AMD64 and any(m.name.lower() == "wow64cpu.dll" for m in self._modules)
        self._threads = [self._thread(raw, starts.get(raw.tid)) for raw in raw_threads]
        # what is not held by a full dump is not mapped; a normal dump without a MemoryInfoList
        # knows nothing of the rest of the address space
        self.regions_complete = self.memory_info is not None or self.holds_module_images()
        self.process = self._process_info(blob, streams, written[0] if written else None, name)

    def _read_regions(self, blob: _Blob, streams: _Streams) -> list[Region]:
        """From the MemoryInfoList when there is one, else from the memory the dump holds."""
        info_stream = streams.get(MEMORY_INFO_LIST)
        self.memory_info = read_memory_info(blob, info_stream) if info_stream else None
        module_map = ModuleMap(self._modules)
        if self.memory_info is not None:
            return regions_from_memory_info(self.memory_info, module_map)
        return regions_from_ranges(self.memory.ranges, module_map)

    def _exception(self, blob: _Blob, streams: _Streams) -> tuple[int, ExceptionInfo] | None:
        """(thread id, exception) of a crash dump; its context decoded like a thread's."""
        stream = streams.get(EXCEPTION)
        if stream is None:
            return None
        raw = read_exception(blob, stream)
        registers, note = decode_context(blob, raw, self.architecture)
        info = ExceptionInfo(raw.code, raw.address, raw.flags, raw.parameters, registers,
                             f"exception context: {note}" if note else None)
        return raw.tid, info

    @staticmethod
    def _architecture(blob: _Blob, streams: _Streams) -> int:
        stream = streams.get(SYSTEM_INFO)
        if stream is None:
            raise MinidumpError("no SystemInfo stream: the processor architecture is unknown")
        arch = read_system_info(blob, stream)
        if arch not in (ARCH_X86, ARCH_AMD64):
            raise MinidumpError(f"unsupported processor architecture {arch} (only x86 and x64)")
        return arch

    @staticmethod
    def _raw_threads(blob: _Blob, streams: _Streams) -> list[RawThread]:
        ex = streams.get(THREAD_EX_LIST)
        if ex is not None:
            return read_threads(blob, ex, extended=True)
        plain = streams.get(THREAD_LIST)
        return read_threads(blob, plain, extended=False) if plain else []

    @staticmethod
    def _ranges(blob: _Blob, streams: _Streams, threads: Sequence[RawThread]) -> list[MemoryRange]:
        ranges: list[MemoryRange] = []
        if (stream := streams.get(MEMORY64_LIST)) is not None:
            ranges += read_memory64_list(blob, stream)
        if (stream := streams.get(MEMORY_LIST)) is not None:
            ranges += read_memory_list(blob, stream)
        # Thread stacks are normally inside the lists too; adding them costs nothing
        # (overlaps are trimmed) and covers writers that only reference them here.
        ranges += [t.stack for t in threads if t.stack is not None]
        return ranges

    def _thread(self, raw: RawThread, start_address: int | None) -> ThreadInfo:
        """ThreadInfo for one MINIDUMP_THREAD. dbghelp fills the ThreadInfoList's
        StartAddress with the Win32 start address (what the thread was created to
        run), so it serves as both start addresses."""
        registers, note = decode_context(self._blob, raw, self.architecture)
        base, limit, source = self._stack_bounds(raw)
        wow64 = None
        if self.is_wow64 and raw.teb:
            try:
                wow64 = read_wow64_context(self.memory.read, raw.teb)
            except MemoryMissing:
                note = "; ".join(filter(None, (note, "WOW64 CPU area not in the dump: 32-bit frames not walked")))
        return ThreadInfo(
            tid=raw.tid,
            registers=registers,
            stack_base=base,
            stack_limit=limit,
            teb=raw.teb or None,
            start_address=start_address,
            win32_start_address=start_address,
            note=note,
            wow64=wow64,
            exception=self.exception[1] if self.exception and self.exception[0] == raw.tid else None,
            debug_registers=decode_debug_registers(self._blob.data, raw.context_rva, raw.context_size,
                                                   self.architecture),
            extra={
                "suspend_count": raw.suspend_count,
                "priority": raw.priority,
                "priority_class": raw.priority_class,
                "stack_bounds_from": source,
            },
        )

    def _stack_bounds(self, raw: RawThread) -> tuple[int | None, int | None, str | None]:
        """StackBase/StackLimit from the TEB's NT_TIB when dumped, else the dumped stack range."""
        tib_base = 8 if self.pointer_size == 8 else 4
        if raw.teb:
            try:
                data = self.memory.read(raw.teb + tib_base, 2 * self.pointer_size)
            except MemoryMissing:
                data = b""
            if data:
                fmt = "<QQ" if self.pointer_size == 8 else "<II"
                base, limit = struct.unpack(fmt, data)
                if limit < base:
                    return base, limit, "teb"
        if raw.stack is not None:
            return raw.stack.end, raw.stack.start, "stack descriptor"
        return None, None, None

    def _process_info(self, blob: _Blob, streams: _Streams, exe: Module | None, name: str | None) -> ProcessInfo:
        """Identity: pid from MiscInfo, name and path from the first module written (the executable)."""
        misc = streams.get(MISC_INFO)
        pid = read_misc_info(blob, misc) if misc else None
        path = exe.path if exe else None
        return ProcessInfo(
            pid=pid or 0,
            name=name or (exe.name if exe else (Path(self.path).name if self.path else "minidump")),
            path=path,
            is_wow64=self.is_wow64,
            pointer_size=self.pointer_size,
        )

    # ---- ProcessMemory ----------------------------------------------------------

    def read(self, address: int, size: int) -> bytes:
        return self.memory.read(address, size)

    def regions(self) -> Sequence[Region]:
        return self._regions

    def modules(self) -> Sequence[Module]:
        return self._modules

    def threads(self) -> Sequence[ThreadInfo]:
        return self._threads

    def holds_module_images(self) -> bool:
        """True when every module's headers are in the dump (a full dump); a normal dump holds
        stacks and thread data only, and its modules must come from files (``--modules``)."""
        return all(self.memory.contains(m.base) for m in self._modules)

    @property
    def has_protections(self) -> bool:
        """True when the dump has a MemoryInfoList, so region protections are real."""
        return self.memory_info is not None

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> MinidumpMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_minidump(path: str | os.PathLike[str]) -> MinidumpMemory:
    """Open and parse a minidump; raises :class:`MinidumpError` if it cannot be trusted."""
    return MinidumpMemory(path)
