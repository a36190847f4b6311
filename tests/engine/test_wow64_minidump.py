"""A 64-bit minidump of a 32-bit process: the 32-bit frames come from each thread's WOW64 CPU area.

Task Manager writes a 64-bit dump of a 32-bit process; each thread's context in it is the
64-bit one, stopped in the WOW64 layer, and the 32-bit registers are in the TEB's CPU area
(TEB64.TlsSlots[1]), the 32-bit stack bounds in the 32-bit TEB (TEB64.NtTib.ExceptionList).
The process is the fuzzer's genuine WOW64 process (stacks composed by the forge over real
mingw modules); its dump is written by code, and the walk from the dump must equal the walk
of the process itself.
"""

from __future__ import annotations

import struct

import pytest

from callstack_forensics.engine.context import WalkOptions
from callstack_forensics.engine.walker import walk_process
from callstack_forensics.forge.modules import Catalog
from callstack_forensics.memory import RegionKind
from callstack_forensics.memory.minidump import MinidumpMemory
from tests.fuzz.corpus import wow64_process

from .minidump_writer import DumpThread, write_minidump

TEBS = 0x7FF00000  # TEB64 pages, two per thread
AREAS = 0x7FE00000  # WOW64 CPU areas
TEBS32 = 0x7FD00000


def dump_of_wow64_process(leave_out_area: bool = False):
    base = wow64_process(Catalog.load())
    proc = base.memory
    dumped = []
    for i, thread in enumerate(base.threads):
        teb, area, teb32 = TEBS + 0x4000 * i, AREAS + 0x1000 * i, TEBS32 + 0x1000 * i
        ctx = thread.wow64
        page = bytearray(0x2000)
        struct.pack_into("<QQQ", page, 0, teb32, thread.stack_base, thread.stack_limit)  # NT_TIB64
        struct.pack_into("<Q", page, 0x1488, area)  # TlsSlots[WOW64_TLS_CPURESERVED]
        proc.map(teb, bytes(page), "RW-", RegionKind.PRIVATE)
        context = bytearray(4 + 0xCC)
        struct.pack_into("<HH", context, 0, 0, 0x14C)
        struct.pack_into("<I", context, 4 + 0xB4, ctx.ebp)
        struct.pack_into("<I", context, 4 + 0xB8, ctx.eip)
        struct.pack_into("<I", context, 4 + 0xC4, ctx.esp)
        if not leave_out_area:
            proc.map(area, bytes(context), "RW-", RegionKind.PRIVATE)
        proc.map(teb32, struct.pack("<III", 0, ctx.stack_base, ctx.stack_limit), "RW-", RegionKind.PRIVATE)
        dumped.append(DumpThread(thread.tid, thread.registers, teb))
    return base, MinidumpMemory(write_minidump(proc, dumped))


def test_a_64_bit_dump_of_a_32_bit_process_walks_both_halves():
    base, dump = dump_of_wow64_process()
    assert dump.process.is_wow64
    for thread in dump.threads():
        [original] = [t for t in base.threads if t.tid == thread.tid]
        assert thread.wow64 == original.wow64
    expected = {s.tid: s for s in walk_process(base.memory, WalkOptions())}
    for stack in walk_process(dump, WalkOptions()):
        assert [f.address for f in stack.frames] == [f.address for f in expected[stack.tid].frames], stack.tid
        assert any(f.is_32bit for f in stack.frames) and stack.is_wow64
        assert stack.stop_reason == expected[stack.tid].stop_reason


def test_a_cpu_area_the_dump_lacks_is_said_and_the_64_bit_half_still_walked():
    _base, dump = dump_of_wow64_process(leave_out_area=True)
    for thread in dump.threads():
        assert thread.wow64 is None and "WOW64 CPU area not in the dump" in (thread.note or "")
    for stack in walk_process(dump, WalkOptions()):
        assert stack.frames and not any(f.is_32bit for f in stack.frames)


@pytest.mark.parametrize("module", ["wow64cpu.dll"])
def test_a_64_bit_process_without_wow64cpu_is_no_wow64_process(module):
    base, _ = dump_of_wow64_process()
    proc = base.memory
    proc._modules = [m for m in proc._modules if m.name.lower() != module]
    dump = MinidumpMemory(write_minidump(proc, [DumpThread(t.tid, t.registers, 0) for t in base.threads]))
    assert not dump.process.is_wow64 and all(t.wow64 is None for t in dump.threads())
