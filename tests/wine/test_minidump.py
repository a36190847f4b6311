"""The minidump reader on real dumps written under Wine, and on hostile mutations of them.

The captured dumps are checked against what winedbg saw at the same moment:
the same threads, frame 0 equal to each thread's RIP, and every return address
of winedbg's backtrace present, in order, on the dumped stack. Protections
come from the MemoryInfoList the dumper adds; without it they must read
``Unknown``. Mutated dumps must raise MinidumpError (or parse), never anything else.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callstack_forensics.memory import UNKNOWN_PROTECTION, MemoryMissing, RegionKind, page_protection
from callstack_forensics.memory.minidump import (
    MEMORY64_LIST,
    MEMORY_INFO_LIST,
    MEMORY_LIST,
    MODULE_LIST,
    SYSTEM_INFO,
    THREAD_LIST,
    MinidumpError,
    MinidumpMemory,
)

from .build import PROGRAMS
from .capture import CaptureResult
from .truth import physical_frames

pytestmark = pytest.mark.wine

NAMES = [p.name for p in PROGRAMS]


@pytest.fixture(scope="module")
def dumps(captures: dict[str, CaptureResult]):
    """Each program's full dump, opened once for the module."""
    opened = {name: MinidumpMemory(c.dump) for name, c in captures.items()}
    yield opened
    for dump in opened.values():
        dump.close()


@pytest.fixture(params=NAMES)
def name(request) -> str:
    return request.param


# ---- the real dumps ---------------------------------------------------------------


def test_threads_are_winedbgs(captures, dumps, name):
    dump, capture = dumps[name], captures[name]
    assert {t.tid for t in dump.threads()} == set(capture.winedbg)
    assert capture.breakin_tid in capture.winedbg, "the break-in thread exists while the process is stopped"
    for thread in dump.threads():
        assert thread.registers is not None and thread.note is None
        assert {"rip", "rsp", "rbp", "rax", "r15"} <= set(thread.registers)


def test_frame0_is_the_dumped_rip(captures, dumps, name):
    for thread in dumps[name].threads():
        frames = physical_frames(captures[name].winedbg[thread.tid])
        assert frames[0]["address"] == thread.rip, f"tid {thread.tid}"


def test_winedbg_return_addresses_are_on_the_dumped_stack(captures, dumps, name):
    """Every return address winedbg names sits in a stack slot above the previous one."""
    dump = dumps[name]
    for thread in dump.threads():
        frames = physical_frames(captures[name].winedbg[thread.tid])
        slots = dump.read(thread.rsp, thread.stack_base - thread.rsp)
        values = [struct.unpack_from("<Q", slots, i)[0] for i in range(0, len(slots) - 7, 8)]
        position = 0
        for frame in frames[1:]:
            assert frame["address"] in values[position:], f"tid {thread.tid}: {frame}"
            position = values.index(frame["address"], position) + 1


def test_stack_bounds_come_from_the_teb(dumps, name):
    for thread in dumps[name].threads():
        assert thread.extra["stack_bounds_from"] == "teb"
        assert thread.teb
        assert thread.stack_limit <= thread.rsp < thread.stack_base


def test_process_identity(captures, dumps, name):
    proc = dumps[name].process
    assert proc.pid == captures[name].pid
    assert proc.name.lower() == f"{name}.exe"
    assert proc.path.lower().endswith(f"\\{name}.exe")
    assert proc.pointer_size == 8 and not proc.is_wow64


def test_modules_match_their_mapped_headers(dumps, name):
    dump = dumps[name]
    names = {m.name.lower() for m in dump.modules()}
    assert {f"{name}.exe", "ntdll.dll", "kernel32.dll", "kernelbase.dll"} <= names
    if name == "twodll":
        assert {"dll_a.dll", "dll_b.dll"} <= names
    for module in dump.modules():
        assert dump.read(module.base, 2) == b"MZ"
        (e_lfanew,) = struct.unpack("<I", dump.read(module.base + 0x3C, 4))
        assert dump.read(module.base + e_lfanew, 4) == b"PE\0\0"
        (timestamp,) = struct.unpack("<I", dump.read(module.base + e_lfanew + 8, 4))
        size, _, checksum = struct.unpack("<III", dump.read(module.base + e_lfanew + 24 + 56, 12))
        assert (size, timestamp, checksum) == (module.size, module.timestamp, module.checksum)


def test_regions_carry_the_dumpers_protections(dumps, name):
    dump = dumps[name]
    assert dump.has_protections
    regions = dump.regions()
    assert all(a.end <= b.start for a, b in zip(regions, regions[1:]))
    exe = next(m for m in dump.modules() if m.name.lower() == f"{name}.exe")
    (e_lfanew,) = struct.unpack("<I", dump.read(exe.base + 0x3C, 4))
    (entry,) = struct.unpack("<I", dump.read(exe.base + e_lfanew + 24 + 16, 4))
    code = dump.region_at(exe.base + entry)
    assert (code.protection, code.kind, code.path) == ("R-X", RegionKind.IMAGE, exe.path)
    assert dump.region_at(exe.base).protection == "R--"
    for thread in dump.threads():
        stack = dump.region_at(thread.rsp)
        assert (stack.protection, stack.kind) == ("RW-", RegionKind.PRIVATE)


def test_private_code_regions(captures, dumps):
    syscall = dumps["rwx_syscall"]
    for thread in captures["rwx_syscall"].ready["threads"]:
        region = syscall.region_at(int(thread["stub"], 16))
        assert (region.protection, region.kind, region.path) == ("RWX", RegionKind.PRIVATE, None)
        assert region.private_executable_bytes == 0x1000
    shell = dumps["shellcode"]
    wanted = {"shellcode_rwx": "RWX", "shellcode_rx": "R-X"}
    for thread in captures["shellcode"].ready["threads"]:
        region = shell.region_at(int(thread["shellcode"], 16))
        assert (region.protection, region.kind) == (wanted[thread["role"]], RegionKind.PRIVATE)
        assert region.private_executable_bytes == 0x2000


def test_absent_memory_is_missing_not_zeros(dumps):
    dump = dumps["fp_chain"]
    with pytest.raises(MemoryMissing) as info:
        dump.read(0, 1)
    assert info.value.address == 0
    ranges = dump.memory.ranges
    gap = next(r for r, nxt in zip(ranges, ranges[1:]) if r.end < nxt.start)
    with pytest.raises(MemoryMissing) as info:
        dump.read(gap.end - 4, 8)
    assert info.value.address == gap.end
    assert dump.read(gap.end - 4, 4) == dump.read_partial(gap.end - 4, 8)
    assert dump.read(0, 0) == b""


def test_reads_span_adjacent_ranges(dumps):
    dump = dumps["fp_chain"]
    ranges = dump.memory.ranges
    joint = next(r for r, nxt in zip(ranges, ranges[1:]) if r.end == nxt.start)
    data = dump.read(joint.end - 8, 16)
    assert data == dump.read(joint.end - 8, 8) + dump.read(joint.end, 8)


def test_normal_dump_has_contexts_and_stacks(captures, name):
    capture = captures[name]
    with MinidumpMemory(capture.normal_dump) as dump, MinidumpMemory(capture.dump) as full:
        regs = {t.tid: t.registers for t in full.threads()}
        for thread in dump.threads():
            assert thread.registers == regs[thread.tid]
            assert thread.stack_limit <= thread.rsp < thread.stack_base
            assert dump.read(thread.rsp, 8) == full.read(thread.rsp, 8)


def test_dumpers_append_fallback_writes_a_valid_file(captures, name):
    """The MemoryInfoList appended after dbghelp wrote the file (directory moved to the end) reads the same."""
    capture = captures[name]
    data = capture.appended_dump.read_bytes()
    _, _, count, dir_rva = struct.unpack_from("<IIII", data, 0)
    assert dir_rva + 12 * count == len(data)
    assert struct.unpack_from("<I", data, dir_rva + 12 * (count - 1))[0] == MEMORY_INFO_LIST
    with MinidumpMemory(data) as appended, MinidumpMemory(capture.normal_dump) as normal:
        assert appended.has_protections
        assert appended.regions() == normal.regions()
        assert [t.registers for t in appended.threads()] == [t.registers for t in normal.threads()]


def test_elastic_protection_spelling():
    assert [page_protection(p) for p in (0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80)] == [
        "---", "R--", "RW-", "RW-", "--X", "R-X", "RWX", "RWX",
    ]  # fmt: skip
    assert page_protection(0x104) == "RW-|GUARD"
    assert page_protection(0x0) == "---"


# ---- mutations of real dumps ---------------------------------------------------------


def _directory(data: bytes) -> dict[int, tuple[int, int, int]]:
    """stream type -> (directory entry offset, rva, size), as written."""
    _, _, count, rva = struct.unpack_from("<IIII", data, 0)
    out = {}
    for i in range(count):
        kind, size, at = struct.unpack_from("<III", data, rva + 12 * i)
        out.setdefault(kind, (rva + 12 * i, at, size))
    return out


def _patch(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    buf = bytearray(data)
    struct.pack_into(fmt, buf, offset, *values)
    return bytes(buf)


@pytest.fixture(scope="module")
def normal_bytes(captures) -> bytes:
    return captures["rwx_syscall"].normal_dump.read_bytes()


@pytest.fixture(scope="module")
def full_bytes(captures) -> bytes:
    return captures["rwx_syscall"].dump.read_bytes()


def test_without_memory_info_list_protections_are_unknown(captures, full_bytes):
    """Wine's own full dumps have no MemoryInfoList: regions exist, protections are never guessed."""
    entry, _, _ = _directory(full_bytes)[MEMORY_INFO_LIST]
    dump = MinidumpMemory(_patch(full_bytes, entry, "<I", 0))
    assert not dump.has_protections
    assert dump.regions() and all(r.protection == UNKNOWN_PROTECTION for r in dump.regions())
    for module in dump.modules():
        region = dump.region_at(module.base)
        assert (region.kind, region.path) == (RegionKind.IMAGE, module.path)
    for thread in captures["rwx_syscall"].ready["threads"]:
        stub = dump.region_at(int(thread["stub"], 16))
        assert (stub.kind, stub.protection, stub.executable) == (RegionKind.UNKNOWN, UNKNOWN_PROTECTION, None)
    covered = sum(r.end - r.start for r in dump.regions())
    assert covered == sum(r.size for r in dump.memory.ranges)


@pytest.mark.parametrize("cut", [0, 1, 4, 16, 31, 32, 33])
def test_truncated_header(normal_bytes, cut):
    with pytest.raises(MinidumpError):
        MinidumpMemory(normal_bytes[:cut])


def test_truncated_inside_each_stream(normal_bytes):
    directory = _directory(normal_bytes)
    for kind in (SYSTEM_INFO, THREAD_LIST, MODULE_LIST, MEMORY_LIST, MEMORY_INFO_LIST):
        _, rva, size = directory[kind]
        with pytest.raises(MinidumpError):
            MinidumpMemory(normal_bytes[: rva + size // 2])


def test_truncated_anywhere_is_an_error_or_a_parse(normal_bytes):
    for cut in range(32, len(normal_bytes), max(1, len(normal_bytes) // 257)):
        try:
            MinidumpMemory(normal_bytes[:cut])
        except MinidumpError:
            pass


def test_bad_signature(normal_bytes):
    with pytest.raises(MinidumpError, match="signature"):
        MinidumpMemory(b"XXXX" + normal_bytes[4:])


def test_stream_directory_past_the_end(normal_bytes):
    with pytest.raises(MinidumpError, match="stream directory"):
        MinidumpMemory(_patch(normal_bytes, 12, "<I", len(normal_bytes) + 100))


def test_huge_stream_count(normal_bytes):
    with pytest.raises(MinidumpError):
        MinidumpMemory(_patch(normal_bytes, 8, "<I", 0xFFFFFFFF))


@pytest.mark.parametrize("kind", [THREAD_LIST, MODULE_LIST, MEMORY_LIST])
def test_huge_entry_counts(normal_bytes, kind):
    _, rva, _ = _directory(normal_bytes)[kind]
    with pytest.raises(MinidumpError, match="entries"):
        MinidumpMemory(_patch(normal_bytes, rva, "<I", 0x7FFFFFFF))


def test_huge_memory_info_and_memory64_counts(normal_bytes, full_bytes):
    _, rva, _ = _directory(normal_bytes)[MEMORY_INFO_LIST]
    with pytest.raises(MinidumpError, match="MemoryInfoList"):
        MinidumpMemory(_patch(normal_bytes, rva + 8, "<Q", 1 << 60))
    _, rva, _ = _directory(full_bytes)[MEMORY64_LIST]
    with pytest.raises(MinidumpError, match="Memory64List"):
        MinidumpMemory(_patch(full_bytes, rva, "<Q", 1 << 40))


def test_memory64_data_past_the_end(full_bytes):
    _, rva, _ = _directory(full_bytes)[MEMORY64_LIST]
    with pytest.raises(MinidumpError, match="past the end"):
        MinidumpMemory(_patch(full_bytes, rva + 8, "<Q", len(full_bytes) - 10))


def test_module_name_past_the_end_or_huge(normal_bytes):
    _, rva, _ = _directory(normal_bytes)[MODULE_LIST]
    with pytest.raises(MinidumpError, match="name of module 0"):
        MinidumpMemory(_patch(normal_bytes, rva + 4 + 20, "<I", len(normal_bytes) + 8))
    (name_rva,) = struct.unpack_from("<I", normal_bytes, rva + 4 + 20)
    with pytest.raises(MinidumpError, match="name of module 0"):
        MinidumpMemory(_patch(normal_bytes, name_rva, "<I", 0x7FFFFFF0))


def test_memory_range_that_wraps_the_address_space(normal_bytes):
    _, rva, _ = _directory(normal_bytes)[MEMORY_LIST]
    with pytest.raises(MinidumpError, match="wraps"):
        MinidumpMemory(_patch(normal_bytes, rva + 4, "<Q", (1 << 64) - 8))


def test_missing_system_info(normal_bytes):
    entry, _, _ = _directory(normal_bytes)[SYSTEM_INFO]
    with pytest.raises(MinidumpError, match="SystemInfo"):
        MinidumpMemory(_patch(normal_bytes, entry, "<I", 0))


def test_unreadable_thread_context_is_a_note_not_an_error(normal_bytes):
    _, rva, _ = _directory(normal_bytes)[THREAD_LIST]
    first = rva + 4
    bad_rva = _patch(normal_bytes, first + 44, "<I", len(normal_bytes) + 0x1000)
    thread = MinidumpMemory(bad_rva).threads()[0]
    assert thread.registers is None and "past the end" in thread.note
    tiny = _patch(normal_bytes, first + 40, "<I", 16)
    thread = MinidumpMemory(tiny).threads()[0]
    assert thread.registers is None and "16 bytes" in thread.note


def test_x86_context_layout(normal_bytes):
    """A 32-bit dump (architecture 0) decodes the x86 CONTEXT: Eip at 0xb8, Esp 0xc4, Ebp 0xb4."""
    directory = _directory(normal_bytes)
    data = _patch(normal_bytes, directory[SYSTEM_INFO][1], "<H", 0)
    _, rva, _ = directory[THREAD_LIST]
    _, _, ctx_size, ctx_rva = struct.unpack_from("<IIII", data, rva + 4 + 32)
    data = _patch(data, ctx_rva, "<I", 0x10007)
    data = _patch(data, ctx_rva + 0xB4, "<III", 0x0019FF70, 0x00401234, 0x23)
    data = _patch(data, ctx_rva + 0xC4, "<I", 0x0019FF00)
    dump = MinidumpMemory(data)
    assert dump.pointer_size == 4 and dump.process.pointer_size == 4
    regs = dump.threads()[0].registers
    assert (regs["eip"], regs["esp"], regs["ebp"]) == (0x00401234, 0x0019FF00, 0x0019FF70)


def test_files_that_are_not_dumps(tmp_path: Path):
    with pytest.raises(MinidumpError, match="cannot open"):
        MinidumpMemory(tmp_path / "absent.dmp")
    (tmp_path / "empty.dmp").write_bytes(b"")
    with pytest.raises(MinidumpError, match="empty"):
        MinidumpMemory(tmp_path / "empty.dmp")
    with pytest.raises(MinidumpError):
        MinidumpMemory(tmp_path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_corruption_never_escapes(normal_bytes, data):
    """Bytes flipped anywhere in the structures: a clean MinidumpError or a usable dump."""
    structure_end = min(len(normal_bytes), max(rva + size for _, rva, size in _directory(normal_bytes).values()))
    buf = bytearray(normal_bytes)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, structure_end - 1))
        buf[at] = data.draw(st.integers(0, 255))
    try:
        dump = MinidumpMemory(bytes(buf))
    except MinidumpError:
        return
    dump.regions(), dump.modules(), dump.process
    for thread in dump.threads():
        if thread.rsp is not None:
            try:
                dump.read(thread.rsp, 64)
            except MemoryMissing:
                pass


# ---- streams Wine does not write, appended to a real dump ---------------------------------


def _append_stream(data: bytes, kind: int, payload: bytes) -> bytes:
    """The stream at the end of the file and the directory rewritten after it (as the dumper's fallback does)."""
    _, _, count, rva = struct.unpack_from("<IIII", data, 0)
    directory = data[rva : rva + 12 * count]
    stream_rva = len(data)
    new_dir_rva = stream_rva + len(payload)
    out = data + payload + directory + struct.pack("<III", kind, len(payload), stream_rva)
    return _patch(out, 8, "<II", count + 1, new_dir_rva)


def test_thread_info_list_gives_start_addresses(normal_bytes):
    tids = [t.tid for t in MinidumpMemory(normal_bytes).threads()]
    entries = b"".join(struct.pack("<IIIIQQQQQQ", tid, 0, 0, 0, 0, 0, 0, 0, 0x140001000 + tid, 1) for tid in tids)
    dump = MinidumpMemory(_append_stream(normal_bytes, 17, struct.pack("<III", 12, 64, len(tids)) + entries))
    assert {t.tid: t.start_address for t in dump.threads()} == {tid: 0x140001000 + tid for tid in tids}


def test_thread_ex_list_is_preferred(normal_bytes):
    """MINIDUMP_THREAD_EX = MINIDUMP_THREAD + a BackingStore descriptor (64 bytes each)."""
    _, rva, _ = _directory(normal_bytes)[THREAD_LIST]
    (count,) = struct.unpack_from("<I", normal_bytes, rva)
    threads = [normal_bytes[rva + 4 + 48 * i : rva + 4 + 48 * (i + 1)] for i in range(count)]
    payload = struct.pack("<I", count) + b"".join(t + bytes(16) for t in threads)
    dump = MinidumpMemory(_append_stream(normal_bytes, 8, payload))
    plain = MinidumpMemory(normal_bytes)
    assert [(t.tid, t.registers) for t in dump.threads()] == [(t.tid, t.registers) for t in plain.threads()]


def test_memory_list_ranges_with_their_own_rvas(full_bytes):
    """A MemoryList range over an address the Memory64List lacks becomes readable; overlaps keep the first."""
    base = 0x7FFF00000000
    payload_data = bytes(range(256)) * 16
    data = full_bytes + payload_data
    descriptor = struct.pack("<IQII", 1, base, len(payload_data), len(full_bytes))
    dump = MinidumpMemory(_append_stream(data, MEMORY_LIST, descriptor))
    assert dump.read(base + 0x10, 4) == bytes([0x10, 0x11, 0x12, 0x13])
    with pytest.raises(MemoryMissing) as info:
        dump.read(base + len(payload_data) - 2, 4)
    assert info.value.address == base + len(payload_data)
