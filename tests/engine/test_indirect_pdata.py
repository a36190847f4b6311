"""Indirect RUNTIME_FUNCTION entries: UnwindData with bit 0 set names another ``.pdata`` entry.

Microsoft's linkers emitted them up to Windows 7/8 for code split off a function (7601.17514's
ntdll has 1,562, user32 1,019, kernel32 428); the fragment shares the primary entry's
UNWIND_INFO. Read as UNWIND_INFO, the primary entry's bytes give "version 0" errors or, worse,
a bogus version 1 record with no codes. The image here is a real PE built by code
(``pe_builder``) whose ``.pdata`` holds such an entry, so the engine reads it as it reads a
module in a memory image.
"""

import struct

import pytest

from callstack_forensics.engine.context import ProcessContext, WalkOptions
from callstack_forensics.engine.modules import ImageCache
from callstack_forensics.engine.pe import ImageError, parse_image
from callstack_forensics.engine.stack import FoundBy, StopReason
from callstack_forensics.engine.symbols import export_for, root_function
from callstack_forensics.engine.unwind import UWOP_ALLOC_SMALL, UWOP_PUSH_NONVOL, UnwindError, primary_entry
from callstack_forensics.engine.walker import walk_thread
from callstack_forensics.memory import Module, RegionKind, ThreadInfo

from .pe_builder import PDATA_RVA, build_pe
from .synth import SynthProcess, unwind_info

BASE = 0x7FF900000000
STACK = 0x200000
RSP0 = STACK + 0x3000
PATH = "C:\\Windows\\System32\\split.dll"
STUB, PRIMARY, FRAGMENT, OUTER = 0x1000, 0x1100, 0x1180, 0x1200


def rel32(frm_end: int, to: int) -> bytes:
    return struct.pack("<i", to - frm_end)


def code_bytes() -> bytes:
    code = bytearray(b"\xcc" * 0x400)
    # NtSplitWait: a leaf syscall stub without unwind data
    code[0x000:0x00B] = b"\x4c\x8b\xd1\xb8\x23\x00\x00\x00\x0f\x05\xc3"
    # SplitPrimary: push rbx; sub rsp,0x20; jmp fragment (the optimizer moved the rest away).
    # Its begin, 0x1100, read as UNWIND_INFO at the entry's RVA + 1, is version 1 with no codes.
    code[0x100:0x105] = b"\x53\x48\x83\xec\x20"
    code[0x105:0x10A] = b"\xe9" + rel32(BASE + PRIMARY + 0xA, BASE + FRAGMENT)
    # the fragment: call NtSplitWait; add rsp,0x20; pop rbx; ret
    code[0x180:0x185] = b"\xe8" + rel32(BASE + FRAGMENT + 5, BASE + STUB)
    code[0x185:0x18B] = b"\x48\x83\xc4\x20\x5b\xc3"
    # SplitOuter: sub rsp,0x28; call SplitPrimary; add rsp,0x28; ret
    code[0x200:0x209] = b"\x48\x83\xec\x28\xe8" + rel32(BASE + OUTER + 9, BASE + PRIMARY)
    code[0x209:0x20E] = b"\x48\x83\xc4\x28\xc3"
    return bytes(code)


PRIMARY_INFO = unwind_info([(5, UWOP_ALLOC_SMALL, 3), (1, UWOP_PUSH_NONVOL, 3)], prolog=5)
FUNCS = [(PRIMARY, PRIMARY + 0x10, PRIMARY_INFO), (OUTER, OUTER + 0xE, unwind_info([(4, UWOP_ALLOC_SMALL, 4)], prolog=4))]
INDIRECT = [(FRAGMENT, FRAGMENT + 0x10, PRIMARY)]
EXPORTS = [("NtSplitWait", STUB), ("SplitPrimary", PRIMARY), ("SplitOuter", OUTER)]
RA_FRAGMENT, RA_OUTER = BASE + FRAGMENT + 5, BASE + OUTER + 9


def image_bytes(indirect=INDIRECT) -> bytes:
    return build_pe(code_bytes(), FUNCS, EXPORTS, "split.dll", indirect)


def process(rip: int, rsp: int, slots: dict[int, int], image: bytes | None = None) -> tuple[ProcessContext, ThreadInfo]:
    proc = SynthProcess(pid=77, name="host.exe")
    proc.map(BASE, image or image_bytes(), "R-X", RegionKind.IMAGE, PATH)
    proc.add_module(Module(BASE, 0x6000, PATH))
    proc.map(STACK, bytes(0x4000), "RW-", RegionKind.PRIVATE)
    for address, value in slots.items():
        proc.write_u64(address, value)
    thread = ThreadInfo(tid=78, registers={"rip": rip, "rsp": rsp, "rbx": 0}, stack_base=STACK + 0x4000, stack_limit=STACK)
    proc.add_thread(thread)
    return ProcessContext(proc, WalkOptions(), ImageCache()), thread


def test_the_primary_entry_is_read_as_unwind_info_would_be_garbage():
    """The premise: the fragment's UnwindData is odd and points into .pdata, at the primary's entry."""
    image = parse_image(lambda rva, n: image_bytes()[rva : rva + n])
    fragment = image.function_at(FRAGMENT + 2)
    assert fragment is not None and fragment.indirect
    assert fragment.unwind & ~1 in range(PDATA_RVA, PDATA_RVA + 12 * 3)
    primary = image.primary_entry(fragment)
    assert (primary.begin, primary.end, primary.indirect) == (PRIMARY, PRIMARY + 0x10, False)


def test_a_caller_frame_in_a_fragment_unwinds_with_the_primary_info():
    # frame 0 in the stub; [RSP0] returns into the fragment, whose frame (the primary's prolog:
    # push rbx, sub rsp 0x20) holds rbx at +0x20 and SplitOuter's return address at +0x28
    slots = {RSP0: RA_FRAGMENT, RSP0 + 0x28: 0xB0B0, RSP0 + 0x30: RA_OUTER, RSP0 + 0x60: 0}
    ctx, thread = process(BASE + STUB + 0xA, RSP0, slots)
    stack = walk_thread(ctx, thread)
    assert [f.address for f in stack.frames] == [BASE + STUB + 0xA, RA_FRAGMENT, RA_OUTER]
    assert all(f.method is FoundBy.UNWOUND for f in stack.frames)
    assert stack.stop_reason is StopReason.END_OF_STACK and stack.note is None


def test_frame_zero_at_the_start_of_a_fragment_is_past_the_primary_prolog():
    # a thread interrupted on the fragment's first byte: its own offset 0 is no prolog offset
    slots = {RSP0 + 0x20: 0xB0B0, RSP0 + 0x28: RA_OUTER, RSP0 + 0x58: 0}
    ctx, thread = process(BASE + FRAGMENT, RSP0, slots)
    stack = walk_thread(ctx, thread)
    assert [f.address for f in stack.frames] == [BASE + FRAGMENT, RA_OUTER]
    assert stack.stop_reason is StopReason.END_OF_STACK


def test_the_fragment_is_symbolized_as_part_of_its_function():
    image = parse_image(lambda rva, n: image_bytes()[rva : rva + n])
    assert root_function(image, image.function_at(FRAGMENT + 4)).begin == PRIMARY
    export = export_for(image, FRAGMENT + 4)
    assert export is not None and export.name == "SplitPrimary"


def test_a_loop_of_indirect_entries_is_an_error_not_a_hang():
    # the fragment's entry points at itself
    image = bytearray(image_bytes())
    for i in range(3):
        begin, end, unwind = struct.unpack_from("<III", image, PDATA_RVA + 12 * i)
        if begin == FRAGMENT:
            struct.pack_into("<III", image, PDATA_RVA + 12 * i, begin, end, (PDATA_RVA + 12 * i) | 1)
    parsed = parse_image(lambda rva, n: bytes(image[rva : rva + n]))
    with pytest.raises(ImageError, match="loop"):
        parsed.primary_entry(parsed.function_at(FRAGMENT))
    slots = {RSP0: RA_FRAGMENT, RSP0 + 0x28: 0xB0B0, RSP0 + 0x30: RA_OUTER, RSP0 + 0x60: 0}
    ctx, thread = process(BASE + STUB + 0xA, RSP0, slots, bytes(image))
    stack = walk_thread(ctx, thread)
    assert stack.frames[1].address == RA_FRAGMENT
    assert "loop" in (stack.note or "") + "".join(f.note or "" for f in stack.frames)
    with pytest.raises(UnwindError):
        primary_entry(parsed, parsed.function_at(FRAGMENT))
