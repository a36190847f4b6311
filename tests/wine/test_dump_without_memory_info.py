"""Dumps that record no protections: unknown memory is kept as unknown, never as code or as "no".

Wine's dbghelp writes no MemoryInfoList (the capture's dumper adds one); other writers leave it
out too. A copy of a capture with that stream marked unused (its directory entry set to
UnusedStream, as a writer that never wrote it leaves the file) is what such a dump reads
like. The shellcode program's thread returns from kernelbase!Sleep into private memory: in a
normal dump those bytes are absent, and that frame must stay, unverified and Unknown, where
the full dump and winedbg have it.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from callstack_forensics.engine.context import ProcessContext, WalkOptions
from callstack_forensics.engine.modules import ImageCache
from callstack_forensics.engine.summary import summarize
from callstack_forensics.engine.walker import walk_thread
from callstack_forensics.memory.minidump import MEMORY_INFO_LIST, MinidumpMemory
from callstack_forensics.sources import MinidumpSource

from .build import BIN
from .capture import CaptureResult
from .wineprefix import PREFIX

pytestmark = pytest.mark.wine

SYSTEM32 = PREFIX / "drive_c" / "windows" / "system32"


def without_memory_info(dump: Path, out: Path) -> Path:
    """``dump`` with its MemoryInfoList directory entry turned into UnusedStream (type 0)."""
    data = bytearray(dump.read_bytes())
    _sig, _ver, count, directory = struct.unpack_from("<IIII", data, 0)
    marked = 0
    for i in range(count):
        if struct.unpack_from("<I", data, directory + 12 * i)[0] == MEMORY_INFO_LIST:
            struct.pack_into("<I", data, directory + 12 * i, 0)
            marked += 1
    assert marked, f"{dump} has no MemoryInfoList to leave out"
    out.write_bytes(bytes(data))
    return out


def walk_all(source: MinidumpSource) -> dict[int, object]:
    (item,) = list(source.processes())
    ctx = ProcessContext(item.memory, WalkOptions(), ImageCache())
    return {t.tid: walk_thread(ctx, t) for t in item.memory.threads()}


def test_a_return_into_private_memory_a_normal_dump_lacks_is_kept(captures: dict[str, CaptureResult], tmp_path):
    capture = captures["shellcode"]
    bare = without_memory_info(capture.directory / "normal.dmp", tmp_path / "normal-bare.dmp")
    with MinidumpMemory(bare) as dump:
        assert not dump.has_protections and not dump.regions_complete
    ours = walk_all(MinidumpSource(bare, [BIN, SYSTEM32]))
    full = walk_all(MinidumpSource(capture.directory / "full.dmp"))
    unbacked = {tid: [f.address for f in s.frames if f.unbacked] for tid, s in full.items()}
    threads = [tid for tid, found in unbacked.items() if found]
    assert threads, "the shellcode program has threads returning into private memory"
    for tid in threads:
        stack = ours[tid]
        assert [f.address for f in stack.frames] == [f.address for f in full[tid].frames], tid
        for address in unbacked[tid]:
            [frame] = [f for f in stack.frames if f.address == address]
            assert (frame.symbol_info, frame.protection, frame.call_verified) == ("Unknown", "Unknown", None)
        assert summarize(stack.frames).contains_unbacked is None


def test_a_full_dump_without_protections_calls_no_present_byte_code(captures: dict[str, CaptureResult], tmp_path):
    """Wine's full dump as dbghelp writes it: every frame the same as with the MemoryInfoList,
    since what the dump holds is all there is (absent is not mapped)."""
    for name in ("shellcode", "fp_chain", "twodll"):
        capture = captures[name]
        bare = without_memory_info(capture.directory / "full.dmp", tmp_path / f"{name}-full-bare.dmp")
        with MinidumpMemory(bare) as dump:
            assert dump.regions_complete and not dump.has_protections
        ours = walk_all(MinidumpSource(bare))
        reference = walk_all(MinidumpSource(capture.directory / "full.dmp"))
        for tid, stack in reference.items():
            assert [f.address for f in ours[tid].frames] == [f.address for f in stack.frames], (name, tid)
