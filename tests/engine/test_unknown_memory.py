"""What the engine says where the source is silent: unknown is neither code nor "no".

A normal minidump holds stacks and a few hundred bytes around each thread's instruction
pointer; a Wine full dump has no MemoryInfoList. Where a source does not record
protections, only a module's executable section or a region known to be executable is
code; where it does not cover the address space, a frame outside every module is
``Unknown``, and a call with too few bytes before it is unverified (``None``), never false.
"""

import struct

from callstack_forensics.engine.context import ProcessContext, WalkOptions
from callstack_forensics.engine.modules import ImageCache
from callstack_forensics.engine.stack import StopReason, Trust
from callstack_forensics.engine.summary import summarize
from callstack_forensics.engine.walker import walk_thread
from callstack_forensics.memory import MemoryMissing, Module, RegionKind, ThreadInfo
from callstack_forensics.memory.pagecache import PageCache

from .synth import SynthProcess
from .test_walker import BASE, FUNCS, EXPORTS, PATH, RA1, RA2, RSP0, STACK, code_bytes
from .pe_builder import build_pe


class Sparse(SynthProcess):
    """A source holding byte ranges (not pages), like a normal minidump."""

    def __init__(self, complete: bool) -> None:
        super().__init__(pid=60, name="sparse.exe")
        self.regions_complete = complete
        self.held: list[tuple[int, int]] = []

    def hold(self, address: int, data: bytes, kind: RegionKind = RegionKind.UNKNOWN, protection: str = "Unknown") -> None:
        self.map(address, data, protection, kind)
        self.held.append((address, address + len(data)))

    def read(self, address: int, size: int) -> bytes:
        if not any(lo <= address and address + size <= hi for lo, hi in self.held):
            raise MemoryMissing(address, "not in the dump")
        return super().read(address, size)


def ctx_of(proc) -> ProcessContext:
    return ProcessContext(proc, WalkOptions(), ImageCache())


def test_code_is_what_a_protection_or_a_section_says_and_nothing_else():
    proc = Sparse(complete=False)
    proc.hold(BASE, build_pe(code_bytes(), FUNCS, EXPORTS), RegionKind.IMAGE)  # no protection recorded
    proc.add_module(Module(BASE, 0x6000, PATH))
    proc.add_module(Module(0x7FFB00000000, 0x10000, "C:\\Windows\\System32\\absent.dll"))
    proc.hold(0x20000, b"\x90" * 0x400)  # present, but nothing says it is code
    proc.hold(0x40000, b"\x90" * 0x100, RegionKind.PRIVATE, "RWX")
    ctx = ctx_of(proc)
    assert ctx.code_state(BASE + 0x1100) is True  # .text of a parsed module
    assert ctx.code_state(BASE + 0x3010) is False  # its .rdata
    assert ctx.code_state(0x7FFB00001000) is None  # a module whose pages the source lacks
    assert ctx.code_state(0x2031E) is None  # present bytes are not code
    assert ctx.code_state(0x40010) is True
    assert ctx.code_state(0x900000) is None  # the source does not cover the address space
    proc.regions_complete = True
    assert ctx_of(proc).code_state(0x900000) is False


def test_a_value_in_present_non_code_memory_is_no_unwound_frame():
    # Wine's full dump (no MemoryInfoList): SynthMid's return slot holds a window handle,
    # 0x2031e, inside memory the dump holds; it became an "unwound" frame
    proc = Sparse(complete=True)
    proc.hold(BASE, build_pe(code_bytes(), FUNCS, EXPORTS), RegionKind.IMAGE)
    proc.add_module(Module(BASE, 0x6000, PATH))
    proc.hold(0x20000, b"\x11" * 0x1000)
    stack_bytes = bytearray(0x1000)
    struct.pack_into("<Q", stack_bytes, 0, RA1)
    struct.pack_into("<Q", stack_bytes, 0x28, 0xB0B0)
    struct.pack_into("<Q", stack_bytes, 0x30, 0x2031E)
    proc.hold(RSP0, bytes(stack_bytes), RegionKind.PRIVATE, "RW-")
    thread = ThreadInfo(7, {"rip": BASE + 0x100A, "rsp": RSP0, "rbx": 1}, stack_base=RSP0 + 0x1000, stack_limit=STACK)
    stack = walk_thread(ctx_of(proc), thread)
    assert 0x2031E not in [f.address for f in stack.frames]
    assert [f.address for f in stack.frames] == [BASE + 0x100A, RA1]
    assert stack.stop_reason is StopReason.NO_RETURN_ADDRESS


def test_a_return_into_memory_the_dump_lacks_is_kept_unverified_and_unknown():
    # a normal dump: the stack is held, ntdll-like module pages are, the private code the
    # thread returns into is not; the region list says nothing of it
    proc = Sparse(complete=False)
    proc.hold(BASE, build_pe(code_bytes(), FUNCS, EXPORTS), RegionKind.IMAGE)
    proc.add_module(Module(BASE, 0x6000, PATH))
    shellcode_return = 0x5A0020
    stack_bytes = bytearray(0x1000)
    struct.pack_into("<Q", stack_bytes, 0, RA1)
    struct.pack_into("<Q", stack_bytes, 0x28, 0xB0B0)
    struct.pack_into("<Q", stack_bytes, 0x30, shellcode_return)
    proc.hold(RSP0, bytes(stack_bytes), RegionKind.PRIVATE, "RW-")
    thread = ThreadInfo(7, {"rip": BASE + 0x100A, "rsp": RSP0, "rbx": 1}, stack_base=RSP0 + 0x1000, stack_limit=STACK)
    stack = walk_thread(ctx_of(proc), thread)
    frame = stack.frames[2]
    assert frame.address == shellcode_return
    assert (frame.symbol_info, frame.region_kind, frame.protection) == ("Unknown", "unknown", "Unknown")
    assert frame.call_verified is None and frame.trust is Trust.MEDIUM
    summary = summarize(stack.frames)
    assert summary.contains_unbacked is None  # unknown, not false


def test_unbacked_is_still_true_and_a_clean_stack_false():
    proc = Sparse(complete=True)
    proc.hold(BASE, build_pe(code_bytes(), FUNCS, EXPORTS), RegionKind.IMAGE, "R-X")
    proc.add_module(Module(BASE, 0x6000, PATH))
    stack_bytes = bytearray(0x1000)
    struct.pack_into("<Q", stack_bytes, 0, RA1)
    struct.pack_into("<Q", stack_bytes, 0x28, 0xB0B0)
    struct.pack_into("<Q", stack_bytes, 0x30, RA2)
    proc.hold(RSP0, bytes(stack_bytes), RegionKind.PRIVATE, "RW-")
    thread = ThreadInfo(7, {"rip": BASE + 0x100A, "rsp": RSP0, "rbx": 1}, stack_base=RSP0 + 0x1000, stack_limit=STACK)
    stack = walk_thread(ctx_of(proc), thread)
    assert summarize(stack.frames).contains_unbacked is False


def test_leading_and_trailing_bytes_are_read_down_to_the_byte():
    proc = Sparse(complete=False)
    proc.hold(0x10000 + 0xF3, bytes(range(0x20)))  # 32 bytes from mid-page
    cache = PageCache(proc)
    assert cache.leading(0x10000 + 0xF3 + 7, 64) == bytes(range(7))
    assert cache.trailing(0x10000 + 0xF3 + 0x1C, 64) == bytes(range(0x1C, 0x20))
    assert cache.leading(0x10000 + 0xF3, 64) == b""


def test_a_call_is_verified_with_the_bytes_that_are_there():
    # only the 6 bytes of `call [rip+x]` precede the return address in the dump
    proc = Sparse(complete=False)
    ret = 0x50000 + 0x80
    proc.hold(ret - 6, b"\xff\x15\x10\x00\x00\x00" + b"\x90" * 8)
    check = ctx_of(proc).call_check(ret)
    assert check.verified is True and check.site.length == 6
    # three bytes that are no call on their own may be the end of a longer one: unknown
    proc2 = Sparse(complete=False)
    proc2.hold(ret - 3, b"\x00\x00\x00" + b"\x90" * 4)
    assert ctx_of(proc2).call_check(ret).verified is None
    # enough bytes and no call: not after a call
    proc3 = Sparse(complete=False)
    proc3.hold(ret - 16, b"\x90" * 20)
    assert ctx_of(proc3).call_check(ret).verified is False
