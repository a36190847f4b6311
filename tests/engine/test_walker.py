"""The walker over a hand-built process: real PE headers, real code bytes, laid-out stacks.

Covers what needs exact control: a leaf syscall stub at frame 0, an unbacked RWX
frame without unwind data (scan fallback, then unwinding resumes), every stop reason.
"""

import struct

import pytest

from callstack_forensics.engine.context import ProcessContext, WalkOptions
from callstack_forensics.memory import Module, RegionKind, ThreadInfo
from callstack_forensics.engine.modules import ImageCache
from callstack_forensics.engine.stack import FoundBy, StopReason
from callstack_forensics.engine.summary import summarize
from callstack_forensics.engine.unwind import UWOP_ALLOC_SMALL, UWOP_PUSH_NONVOL
from callstack_forensics.engine.walker import walk_process, walk_thread

from .pe_builder import build_pe
from .synth import SynthProcess, unwind_info

BASE = 0x7FF800000000
SC = 0x20000000
STACK = 0x100000
RSP0 = STACK + 0x3000
PATH = "C:\\Windows\\System32\\synth.dll"


def rel32(frm_end: int, to: int) -> bytes:
    return struct.pack("<i", to - frm_end)


def code_bytes() -> bytes:
    code = bytearray(b"\xcc" * 0x400)
    # 0x1000 NtSynthWait: leaf syscall stub, no unwind data
    code[0x000:0x00B] = b"\x4c\x8b\xd1\xb8\x23\x00\x00\x00\x0f\x05\xc3"
    # 0x1100 SynthMid: push rbx; sub rsp,0x20; call NtSynthWait; add rsp,0x20; pop rbx; ret
    code[0x100:0x10A] = b"\x53\x48\x83\xec\x20\xe8" + rel32(BASE + 0x110A, BASE + 0x1000)
    code[0x10A:0x110] = b"\x48\x83\xc4\x20\x5b\xc3"
    # 0x1200 SynthOuter: sub rsp,0x28; call rax; add rsp,0x28; ret
    code[0x200:0x20B] = b"\x48\x83\xec\x28\xff\xd0\x48\x83\xc4\x28\xc3"
    # 0x1300 SynthStart: sub rsp,0x28; call SynthOuter; add rsp,0x28; ret
    code[0x300:0x309] = b"\x48\x83\xec\x28\xe8" + rel32(BASE + 0x1309, BASE + 0x1200)
    code[0x309:0x30E] = b"\x48\x83\xc4\x28\xc3"
    return bytes(code)


FUNCS = [
    (0x1100, 0x1110, unwind_info([(5, UWOP_ALLOC_SMALL, 3), (1, UWOP_PUSH_NONVOL, 3)], prolog=5)),
    (0x1200, 0x120B, unwind_info([(4, UWOP_ALLOC_SMALL, 4)], prolog=4)),
    (0x1300, 0x130E, unwind_info([(4, UWOP_ALLOC_SMALL, 4)], prolog=4)),
]
EXPORTS = [("NtSynthWait", 0x1000), ("SynthMid", 0x1100), ("SynthOuter", 0x1200), ("SynthStart", 0x1300)]
RA1, RA2, RA3 = BASE + 0x110A, BASE + 0x1206, BASE + 0x1309
SHELLCODE = b"\x48\x83\xec\x28\x48\xb8" + struct.pack("<Q", BASE + 0x1100) + b"\xff\xd0\x48\x83\xc4\x28\xc3"
RA_SC = SC + 16


def make_process(shellcode: bool = False, stack_base: int | None = None) -> SynthProcess:
    proc = SynthProcess(pid=4242, name="victim.exe")
    proc.map(BASE, build_pe(code_bytes(), FUNCS, EXPORTS)[:0x6000], "R-X", RegionKind.IMAGE, PATH)
    proc.add_module(Module(BASE, 0x6000, PATH))
    proc.map(STACK, bytes(0x4000), "RW-", RegionKind.PRIVATE)
    slots = {RSP0: RA1, RSP0 + 0x28: 0xB0B0}
    if shellcode:
        proc.map(SC, SHELLCODE + b"\xcc" * 0x100, "RWX", RegionKind.PRIVATE)
        slots.update({RSP0 + 0x30: RA_SC, RSP0 + 0x38: 0x4141, RSP0 + 0x60: RA2, RSP0 + 0x90: RA3, RSP0 + 0xC0: 0})
        top = RSP0 + 0xC8
    else:
        slots.update({RSP0 + 0x30: RA2, RSP0 + 0x60: RA3, RSP0 + 0x90: 0})
        top = RSP0 + 0x98
    for addr, val in slots.items():
        proc.write_u64(addr, val)
    regs = {"rip": BASE + 0x100A, "rsp": RSP0, "rbp": 0, "rbx": 0x1}
    proc.add_thread(ThreadInfo(7, regs, stack_base=stack_base or top + 0x100, stack_limit=STACK))
    return proc


def walk(proc, **opts):
    [stack] = walk_process(proc, WalkOptions(**opts))
    return stack


def test_unwinds_through_a_leaf_syscall_stub_and_names_exports():
    stack = walk(make_process())
    assert [f.address for f in stack.frames] == [BASE + 0x100A, RA1, RA2, RA3]
    assert stack.stop_reason == StopReason.END_OF_STACK and stack.note is None
    assert [f.method for f in stack.frames] == [FoundBy.UNWOUND] * 4
    assert [f.call_verified for f in stack.frames] == [None, True, True, True]
    f0 = stack.frames[0]
    assert f0.symbol_info == "c:\\windows\\system32\\synth.dll!NtSynthWait+0xa"
    assert f0.callsite_leading_bytes.endswith("4c8bd1b8230000000f05")
    assert len(f0.callsite_leading_bytes) == 128 and len(f0.callsite_trailing_bytes) == 128
    assert stack.frames[1].symbol_info.endswith("synth.dll!SynthMid+0xa")
    assert stack.frames[1].call_target == BASE + 0x1000
    assert stack.frames[2].call_instruction == "call rax"
    assert summarize(stack.frames).summary == "synth.dll"


def test_unbacked_rwx_frame_then_scan_then_unwinding_resumes():
    stack = walk(make_process(shellcode=True))
    assert [f.address for f in stack.frames] == [BASE + 0x100A, RA1, RA_SC, RA2, RA3]
    sc = stack.frames[2]
    assert (sc.symbol_info, sc.protection, sc.region_kind, sc.call_verified) == ("Unbacked", "RWX", "private", True)
    assert [f.method for f in stack.frames] == [FoundBy.UNWOUND] * 3 + [FoundBy.SCANNED, FoundBy.UNWOUND]
    assert summarize(stack.frames).summary == "synth.dll|Unbacked|synth.dll"
    assert stack.stop_reason == StopReason.END_OF_STACK


def test_without_scan_the_walk_stops_at_the_unbacked_frame_and_says_why():
    stack = walk(make_process(shellcode=True), scan=False)
    assert [f.address for f in stack.frames] == [BASE + 0x100A, RA1, RA_SC]
    assert stack.stop_reason == StopReason.NO_RETURN_ADDRESS
    assert "no unwind data" in stack.note


def test_frame_limit():
    stack = walk(make_process(), max_frames=2)
    assert len(stack.frames) == 2 and stack.stop_reason == StopReason.FRAME_LIMIT


def test_rsp_leaving_the_stack_bounds_stops_the_walk():
    proc = make_process(stack_base=RSP0 + 0x40)  # RA3's slot lies above this base
    stack = walk(proc)
    assert stack.stop_reason in (StopReason.LEFT_STACK, StopReason.END_OF_STACK)
    assert all(f.stack_pointer is None or f.stack_pointer <= RSP0 + 0x40 for f in stack.frames)
    assert RA3 not in [f.address for f in stack.frames]


def test_missing_stack_page_is_a_note_not_zeros():
    proc = make_process()
    proc.unmap_page(RSP0 & ~0xFFF)
    stack = walk(proc)
    assert [f.address for f in stack.frames] == [BASE + 0x100A]
    assert stack.stop_reason in (StopReason.NO_RETURN_ADDRESS, StopReason.UNREADABLE)
    assert stack.note


def test_thread_without_context_is_listed_with_its_reason():
    proc = make_process()
    proc.add_thread(ThreadInfo(8, None, note="trap frame paged out"))
    stacks = walk_process(proc)
    assert [s.tid for s in stacks] == [7, 8]
    assert stacks[1].frames == [] and stacks[1].stop_reason == StopReason.NO_CONTEXT
    assert stacks[1].note == "trap frame paged out"
    assert stacks[1].to_json()["note"] == "trap frame paged out"


def test_module_cache_parses_each_module_once_across_processes():
    images = ImageCache()
    for pid in (1, 2, 3):
        proc = make_process()
        ctx = ProcessContext(proc, WalkOptions(), images)
        for thread in proc.threads():
            walk_thread(ctx, thread)
    assert images.parses == 1


def test_partial_pages_are_read_as_asked():
    """A source holding part of a page (a normal minidump's stack from RSP-8) still reads."""
    from callstack_forensics.memory import MemoryMissing
    from callstack_forensics.memory.pagecache import PageCache

    class Partial(SynthProcess):
        def read(self, address, size):
            if address < RSP0 - 8:
                raise MemoryMissing(address)
            return super().read(address, size)

    proc = Partial()
    proc.map(STACK, bytes(0x4000))
    proc.write_u64(RSP0, 0x1234)
    cache = PageCache(proc)
    assert cache.u64(RSP0) == 0x1234
    assert cache.try_read(RSP0 - 16, 8) is None


def test_threads_at_the_same_addresses_share_descriptions_but_never_frames():
    """Frame descriptions are worked out once per process and address (decorate.make_frame); a
    second thread stopped at the same return addresses gets equal frames, as objects of its own,
    so that what the walker amends on one thread's frame never shows on another's."""
    proc = make_process()
    [first_thread] = proc.threads()
    proc.add_thread(ThreadInfo(8, dict(first_thread.registers), stack_base=first_thread.stack_base,
                               stack_limit=first_thread.stack_limit))
    first, second = walk_process(proc, WalkOptions())
    assert [f.to_ecs() for f in first.frames] == [f.to_ecs() for f in second.frames]
    for one, other in zip(first.frames, second.frames):
        assert one is not other and (one.module is None or one.module is not other.module)
    first.frames[1].note = "amended on the first thread only"
    first.frames[1].module.name = "changed.dll"
    assert second.frames[1].note is None and second.frames[1].module.name == "synth.dll"
