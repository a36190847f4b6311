"""Regressions for what the engine fuzzer (tests/fuzz) found, one test per finding.

1. A thread whose registers hold neither rip nor eip/esp (a torn context) ended its walk without
   a stop reason (`python -m tests.fuzz --engine-case 126 --seed 1`, InvariantBroken).
2. A WOW64 thread whose 32-bit TEB claims a stack base gigabytes above ESP made the 32-bit scan
   climb page by page up to it: a hang (`--engine-case 60 --seed 1`, 2 s time-out).
3. (tests/properties/test_unwind_props.py) UNWIND_INFO naming RSP as its frame register unwound
   to a caller RSP *below* the callee's: SET_FPREG computed rsp = rsp - offset * 16.
"""

from __future__ import annotations

import time

import pytest

from callstack_forensics.engine.context import ProcessContext, WalkOptions
from callstack_forensics.forge.modules import Catalog
from callstack_forensics.memory import ThreadInfo, Wow64Context
from callstack_forensics.engine.modules import ImageCache
from callstack_forensics.engine.stack import StopReason
from callstack_forensics.engine.unwind import UWOP_SET_FPREG, Registers, StackReader, UnwindError, parse_unwind_info, virtual_unwind
from callstack_forensics.engine.walker import walk_thread
from tests.fuzz.corpus import wow64_process
from tests.fuzz.timeout import time_limit

from .synth import CODE_RVA, UNWIND_RVA, SynthImage, SynthProcess, unwind_info
from .test_walker import RSP0, make_process


def test_registers_without_an_instruction_pointer_end_with_no_context():
    proc = make_process()
    for registers in ({"rsp": RSP0, "rbx": 0}, {"rbx": 0, "rbp": 0}, {"eip": 0x401000}, {}):
        thread = ThreadInfo(9, registers, stack_base=RSP0 + 0x1000, stack_limit=RSP0 - 0x1000)
        stack = walk_thread(ProcessContext(proc, WalkOptions(), ImageCache()), thread)
        assert stack.stop_reason == StopReason.NO_CONTEXT, registers
        assert stack.frames == [] and stack.note
        assert stack.to_json()["stop_reason"] == "no user-mode context"


def test_a_32bit_stack_base_far_above_esp_does_not_hang_the_wow64_walk():
    base = wow64_process(Catalog.load())
    thread = base.threads[0]
    context = thread.wow64
    for stack_base, ebp in ((0xFFFFFFFF, 0), (0xFFFFF000, context.ebp), (0x7FFFFFFF, 0x41414141)):
        lying = ThreadInfo(thread.tid, thread.registers, thread.stack_base, thread.stack_limit,
                           wow64=Wow64Context(context.eip, context.esp, ebp, stack_base, context.stack_limit))
        start = time.perf_counter()
        with time_limit(10):
            stack = walk_thread(ProcessContext(base.memory, WalkOptions(), base.images), lying)
        assert time.perf_counter() - start < 2, stack_base
        assert stack.stop_reason is not None and stack.frames


def test_rsp_as_the_frame_register_is_unusable_unwind_data():
    record = unwind_info([(0, UWOP_SET_FPREG, 0)], frame_reg=4, frame_off=1)
    image = SynthImage(b"\xcc" * 0x40, [(CODE_RVA, CODE_RVA + 0x40, record)]).build()[1]
    with pytest.raises(UnwindError, match="rsp as its frame register"):
        parse_unwind_info(image, UNWIND_RVA)
    stack = SynthProcess()
    stack.map(0x10000, bytes(0x2000))
    regs = Registers({"rip": 0x7FF600000000 + CODE_RVA, "rsp": 0x10010})
    with pytest.raises(UnwindError):
        virtual_unwind(image, 0x7FF600000000, image.function_at(CODE_RVA), regs, StackReader(stack.read), False)
