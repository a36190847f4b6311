"""The walker on random stack contents: always a ThreadStack with a stop reason, never too many frames.

Threads of hand-built processes (tests/engine) and of the fuzzer's genuine x64 and WOW64 stacks,
with their stack bytes replaced or sprinkled with return addresses, stack pointers and noise,
and with odd registers and TEB bounds. The walk must end (within the time bound) with a reason,
at most ``max_frames`` frames indexed 0..n-1, and a result that serialises.
"""

from __future__ import annotations

import json
import struct
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from callstack_forensics.engine.context import ProcessContext, WalkOptions
from callstack_forensics.forge.modules import Catalog
from callstack_forensics.memory import PAGE_SIZE, ThreadInfo
from callstack_forensics.engine.modules import ImageCache
from callstack_forensics.engine.stack import ThreadStack
from callstack_forensics.engine.walker import walk_thread
from tests.engine.test_walker import BASE, RA1, RA2, RA3, RA_SC, RSP0, SC, STACK, make_process
from tests.engine.test_wow64 import STACK as STACK32, x86_process
from tests.fuzz.corpus import BaseProcess, wow64_process, x64_process
from tests.fuzz.overlay import OverlayMemory

from .common import PROPERTY, bounded

CATALOG = Catalog.load()
GENUINE = {"x64": x64_process(CATALOG), "wow64": wow64_process(CATALOG)}

options = st.builds(WalkOptions, max_frames=st.integers(1, 64), max_stack_bytes=st.integers(0x10, 0x20000),
                    scan=st.booleans())
bounds = st.one_of(st.none(), st.integers(0, (1 << 64) - 1))


def check(stack: ThreadStack, opts: WalkOptions) -> None:
    assert isinstance(stack, ThreadStack) and stack.stop_reason is not None
    assert len(stack.frames) <= opts.max_frames
    assert [f.index for f in stack.frames] == list(range(len(stack.frames)))
    json.dumps(stack.to_json())


def values(width: int, interesting: list[int]):
    """Stack words: interesting addresses (return addresses, stack slots) or anything."""
    mask = (1 << (8 * width)) - 1
    return st.one_of(st.sampled_from(interesting), st.integers(0, mask))


X64_VALUES = [RA1, RA2, RA3, RA_SC, BASE + 0x1000, SC + 16, 0, RSP0, RSP0 + 8, RSP0 + 0x30, STACK]


@PROPERTY
@given(st.dictionaries(st.integers(0, 0x3F8 // 8), values(8, X64_VALUES), max_size=40), options,
       st.booleans(), bounds, bounds)
def test_random_stack_words_in_the_synth_process(words, opts, shellcode, base, limit):
    proc = make_process(shellcode=shellcode)
    for slot, value in words.items():
        proc.write_u64(RSP0 + 8 * slot, value)
    thread = proc.threads()[0]
    if base is not None or limit is not None:
        thread = replace(thread, stack_base=base, stack_limit=limit)
    with bounded():
        stack = walk_thread(ProcessContext(proc, opts, ImageCache()), thread)
    check(stack, opts)


@PROPERTY
@given(st.binary(min_size=0x800, max_size=0x800), options,
       st.fixed_dictionaries({"rip": values(8, X64_VALUES), "rsp": st.integers(RSP0 - 0x100, RSP0 + 0x800)}))
def test_random_stack_bytes_and_registers(data, opts, regs):
    proc = make_process(shellcode=True)
    proc.map(RSP0, data, "RW-")
    thread = replace(proc.threads()[0], registers={**regs, "rbp": 0, "rbx": 1})
    with bounded():
        stack = walk_thread(ProcessContext(proc, opts, ImageCache()), thread)
    check(stack, opts)


@PROPERTY
@given(st.dictionaries(st.integers(0, 0x100 // 4), values(4, [0x40100B, 0x401108, 0x401205, 0x401288, 0x600005,
                                                               STACK32 + 0x1008, STACK32 + 0x1030, 0]), max_size=24),
       options, st.integers(0, 0xFFFFFFFF), bounds)
def test_random_32bit_stacks(words, opts, ebp, base):
    proc, esp = x86_process()
    for slot, value in words.items():
        address = esp + 4 * slot
        page = proc._pages[address & ~(PAGE_SIZE - 1)]
        page[address & 0xFFF : (address & 0xFFF) + 4] = struct.pack("<I", value)
    thread = ThreadInfo(3, {"eip": 0x40100B, "esp": esp, "ebp": ebp}, stack_base=base, stack_limit=STACK32)
    with bounded():
        stack = walk_thread(ProcessContext(proc, opts, ImageCache()), thread)
    check(stack, opts)


def corrupt(base: BaseProcess, tid: int, changes: dict[int, int]) -> OverlayMemory:
    """The process with words of the top page of each of the thread's stacks replaced."""
    pages: dict[int, bytes | None] = {}
    for span in base.stacks[tid]:
        for offset, value in changes.items():
            address = span.top - 0x1000 + (offset * span.width) % 0x1000
            page = address & ~(PAGE_SIZE - 1)
            data = bytearray(pages.get(page) or base.memory.read(page, PAGE_SIZE))
            data[address - page : address - page + span.width] = (value & ((1 << (8 * span.width)) - 1)).to_bytes(
                span.width, "little")
            pages[page] = bytes(data)
    return OverlayMemory(base.memory, pages, base.threads)


@PROPERTY
@given(st.sampled_from(["x64", "wow64"]), st.data(), options)
def test_genuine_stacks_with_words_replaced(which, data, opts):
    base = GENUINE[which]
    thread = data.draw(st.sampled_from(base.threads))
    interesting = base.return_addresses + [s.top - 0x100 for spans in base.stacks.values() for s in spans]
    changes = data.draw(st.dictionaries(st.integers(0, 0x3FF), values(8, interesting), max_size=16))
    memory = corrupt(base, thread.tid, changes)
    with bounded():
        stack = walk_thread(ProcessContext(memory, opts, base.images), thread)
    check(stack, opts)
