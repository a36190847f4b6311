"""The limits a user sets (WalkOptions.max_frames, max_stack_bytes) hold on every path of a walk.

max_frames: x64 unwinding, the 32-bit EBP walk and the WOW64 splice of the two. max_stack_bytes:
the stack the scans of one thread read (x64 and 32-bit), which a hostile TEB's stack base cannot
widen; unwinding reads a few slots per frame and is bounded by max_frames, so frames bigger than
the limit still unwind. Each limit ends the walk with its own stop reason.
"""

from __future__ import annotations

import time

import pytest

from callstack_forensics.engine.context import ProcessContext, WalkOptions
from callstack_forensics.forge.modules import Catalog
from callstack_forensics.memory import PAGE_SIZE, ThreadInfo, Wow64Context
from callstack_forensics.engine.modules import ImageCache
from callstack_forensics.engine.scan import scan_for_return
from callstack_forensics.engine.stack import StopReason
from callstack_forensics.engine.walker import walk_thread
from callstack_forensics.engine.wow64 import walk_x86
from tests.fuzz.corpus import wow64_process
from tests.fuzz.timeout import time_limit

from .test_walker import BASE, RA1, RA2, RA3, RA_SC, RSP0, STACK, make_process, walk
from .test_walker import SC as SC64
from .test_wow64 import CODE as CODE32, SC, STACK as STACK32, x86_process


class ReadLog:
    """Wraps a process's read to record the highest address in [floor, ceiling) any read reached."""

    def __init__(self, proc, floor: int, ceiling: int) -> None:
        self.highest = 0
        original = proc.read

        def read(address: int, size: int) -> bytes:
            if floor <= address < ceiling:
                self.highest = max(self.highest, address + size)
            return original(address, size)

        proc.read = read


@pytest.fixture(scope="module")
def wow64():
    return wow64_process(Catalog.load())


def test_max_frames_holds_for_x64_unwinding():
    stack = walk(make_process(), max_frames=3)
    assert [f.address for f in stack.frames] == [BASE + 0x100A, RA1, RA2]
    assert stack.stop_reason == StopReason.FRAME_LIMIT


def test_max_frames_holds_for_a_32bit_walk():
    proc, esp = x86_process()
    ctx = ProcessContext(proc, WalkOptions(max_frames=2), ImageCache())
    frames, stop, _note = walk_x86(ctx, 0x40100B, esp, STACK32 + 0x1008, STACK32, STACK32 + 0x2000)
    assert [f.address for f in frames] == [0x40100B, 0x401108]
    assert stop == StopReason.FRAME_LIMIT


def test_max_frames_holds_across_the_wow64_splice(wow64):
    """Each half honours the limit on its own; the spliced stack must honour it too."""
    thread = wow64.threads[0]
    full = walk_thread(ProcessContext(wow64.memory, WalkOptions(), wow64.images), thread)
    assert len(full.frames) == 13 and full.stop_reason == StopReason.END_OF_STACK
    stack = walk_thread(ProcessContext(wow64.memory, WalkOptions(max_frames=8), wow64.images), thread)
    assert [f.address for f in stack.frames] == [f.address for f in full.frames[:8]]
    assert stack.stop_reason == StopReason.FRAME_LIMIT


def test_max_stack_bytes_does_not_cut_unwinding():
    """Unwinding reads a few slots per frame: a frame larger than the limit (Wine's frameless
    test allocates more than a megabyte) still unwinds, frames bound by max_frames."""
    stack = walk(make_process(), max_stack_bytes=0x10)
    assert [f.address for f in stack.frames] == [BASE + 0x100A, RA1, RA2, RA3]
    assert stack.complete


def test_max_stack_bytes_bounds_the_x64_scan():
    # below the shellcode frame (rsp RSP0 + 0x38) the scan must climb to RSP0 + 0x60 for RA2
    stack = walk(make_process(shellcode=True), max_stack_bytes=0x20)
    assert [f.address for f in stack.frames] == [BASE + 0x100A, RA1, RA_SC]
    assert stack.stop_reason == StopReason.BYTE_LIMIT
    assert "max_stack_bytes 0x20 reached" in stack.note
    assert [f.address for f in walk(make_process(shellcode=True), max_stack_bytes=0x30).frames][3] == RA2


def test_a_hostile_stack_base_does_not_widen_the_x64_scan():
    proc = make_process(shellcode=True, stack_base=(1 << 47) - 1)
    for slot in (RSP0 + 0x60, RSP0 + 0x90):
        proc.write_u64(slot, 0)  # nothing for the scan to find: it climbs until a limit stops it
    log = ReadLog(proc, STACK, SC64 - 0x100000)  # below the code pages read for call sites
    with time_limit(10):
        stack = walk(proc, max_stack_bytes=0x8000)
    assert stack.stop_reason == StopReason.BYTE_LIMIT
    assert log.highest <= RSP0 + 0x8000 + 2 * PAGE_SIZE  # the budget, the frames below it, whole pages


def test_max_stack_bytes_bounds_the_32bit_walk_when_the_teb_lies():
    """A TEB claiming a 32-bit stack up to 4 GB: the scan stops at esp + max_stack_bytes."""
    proc, esp = x86_process()
    log = ReadLog(proc, STACK32, CODE32 - 0x1000)  # the stack lies below the code
    ctx = ProcessContext(proc, WalkOptions(max_stack_bytes=0x4000), ImageCache())
    start = time.perf_counter()
    with time_limit(10):
        frames, stop, note = walk_x86(ctx, 0x40100B, esp, 0, STACK32, 0xFFFFF000)
    assert time.perf_counter() - start < 2
    assert [f.address for f in frames] == [0x40100B, 0x401108, SC + 5, 0x401205, 0x401288]
    assert stop == StopReason.BYTE_LIMIT and "max_stack_bytes 0x4000 reached" in note
    assert log.highest <= esp + 0x4000 + 2 * PAGE_SIZE


def test_max_stack_bytes_bounds_the_wow64_thread_too(wow64):
    thread = wow64.threads[1]
    context = thread.wow64
    lying = ThreadInfo(thread.tid, thread.registers, thread.stack_base, thread.stack_limit,
                       wow64=Wow64Context(context.eip, context.esp, 0, 0xFFFFF000, context.stack_limit))
    with time_limit(10):
        stack = walk_thread(ProcessContext(wow64.memory, WalkOptions(max_stack_bytes=0x100), wow64.images), lying)
    assert stack.stop_reason == StopReason.BYTE_LIMIT
    assert stack.frames[-1].is_32bit


def test_scan_reads_nothing_at_or_past_its_stop():
    proc = make_process(shellcode=True)
    ctx = ProcessContext(proc, WalkOptions(), ImageCache())
    hit, _ = scan_for_return(ctx, RSP0 + 0x38, RSP0 + 0x68)
    assert hit is not None and (hit.slot, hit.value) == (RSP0 + 0x60, RA2)
    assert scan_for_return(ctx, RSP0 + 0x38, RSP0 + 0x60)[0] is None  # the slot at stop is not read


def test_default_limits_leave_genuine_stacks_whole():
    stack = walk(make_process())
    assert [f.address for f in stack.frames] == [BASE + 0x100A, RA1, RA2, RA3]
    assert stack.complete
