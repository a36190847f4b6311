"""Hostile PEs: images crafted to hurt analysts' tools, built here by patching a genuine one.

The base image is the walker tests' synth.dll (real headers, exports, .pdata and UNWIND_INFO;
frames NtSynthWait <- SynthMid <- SynthOuter <- SynthStart). Each test corrupts one structure the
way crafted malware or a smeared page does and requires a clear error or note, a walk that still
ends with a reason, and bounded time: never an exception out of the walk, never a hang.
"""

from __future__ import annotations

import struct
import time

import pytest

from callstack_forensics.memory import MemoryMissing, Module, RegionKind, ThreadInfo
from callstack_forensics.engine.pe import ImageError, header_layout, parse_image
from callstack_forensics.engine.stack import FoundBy, StopReason
from callstack_forensics.engine.symbols import root_function
from callstack_forensics.engine.walker import walk_process
from tests.fuzz.timeout import time_limit

from .pe_builder import PDATA_RVA, build_pe
from .synth import SynthProcess, unwind_info
from .test_walker import BASE, EXPORTS, FUNCS, PATH, RA1, RA2, RA3, RSP0, STACK, code_bytes

FILE_HEADER = 0x84
OPT = 0x98
DIRS = OPT + 112
SECTIONS = OPT + 0xF0
EXPORT_DIR = 0x3028  # where pe_builder put the export directory for these functions
SECONDS = 2.0  # every hostile image is walked well within this


def genuine() -> bytearray:
    return bytearray(build_pe(code_bytes(), FUNCS, EXPORTS))


def reader(data: bytes | bytearray):
    data = bytes(data)

    def read(rva: int, size: int) -> bytes:
        if rva < 0 or rva + size > len(data):
            raise MemoryMissing(rva)
        return data[rva : rva + size]

    return read


def walk_image(image: bytes | bytearray):
    """Map ``image`` as synth.dll in the walker tests' process and walk its one thread, timed."""
    proc = SynthProcess(pid=4242, name="victim.exe")
    proc.map(BASE, bytes(image[:0x6000]).ljust(0x6000, b"\0"), "R-X", RegionKind.IMAGE, PATH)
    proc.add_module(Module(BASE, 0x6000, PATH))
    proc.map(STACK, bytes(0x4000), "RW-", RegionKind.PRIVATE)
    for addr, val in {RSP0: RA1, RSP0 + 0x28: 0xB0B0, RSP0 + 0x30: RA2, RSP0 + 0x60: RA3, RSP0 + 0x90: 0}.items():
        proc.write_u64(addr, val)
    proc.add_thread(ThreadInfo(7, {"rip": BASE + 0x100A, "rsp": RSP0, "rbp": 0, "rbx": 1},
                               stack_base=RSP0 + 0x198, stack_limit=STACK))
    start = time.perf_counter()
    with time_limit(SECONDS * 5):  # a hang fails the test instead of stalling the suite
        [stack] = walk_process(proc)
    assert time.perf_counter() - start < SECONDS
    assert stack.stop_reason is not None
    return stack


def pdata_entry(index: int) -> int:
    return PDATA_RVA + 12 * index


def test_the_genuine_image_walks_completely():
    stack = walk_image(genuine())
    assert [f.address for f in stack.frames] == [BASE + 0x100A, RA1, RA2, RA3]
    assert stack.complete


def test_number_of_sections_0xffff_reads_only_the_header_page_and_walks():
    image = genuine()
    struct.pack_into("<H", image, FILE_HEADER + 2, 0xFFFF)
    start = time.perf_counter()
    try:
        parsed = parse_image(reader(image))
    except ImageError as exc:
        assert "PE header" in str(exc)
    else:
        assert len(parsed.sections) <= 96  # the section table cannot leave the header page
    size, sections = header_layout(bytes(image[:0x1000]))
    assert len(sections) <= 96 and size == 0x400
    assert time.perf_counter() - start < SECONDS
    stack = walk_image(image)
    assert [f.address for f in stack.frames] == [BASE + 0x100A, RA1, RA2, RA3]


def test_export_counts_0xffffffff_are_capped_with_a_note():
    image = genuine()
    struct.pack_into("<II", image, EXPORT_DIR + 20, 0xFFFFFFFF, 0xFFFFFFFF)  # NumberOfFunctions, NumberOfNames
    parsed = parse_image(reader(image))
    assert any("export counts capped (4294967295 functions, 4294967295 names)" in n for n in parsed.notes)
    stack = walk_image(image)
    assert [f.address for f in stack.frames] == [BASE + 0x100A, RA1, RA2, RA3]
    assert stack.stop_reason == StopReason.END_OF_STACK


def test_forwarded_exports_that_loop_are_never_followed():
    """A -> synth.B and B -> synth.A: a resolver that follows forwarders would loop; we drop them."""
    image = genuine()
    funcs, names = struct.unpack_from("<II", image, EXPORT_DIR + 28)
    forwarders = EXPORT_DIR + 0x100
    image[forwarders : forwarders + 32] = b"synth.SynthMid\0synth.NtSynthWait\0"
    struct.pack_into("<I", image, funcs + 0, forwarders)  # NtSynthWait -> synth.SynthMid
    struct.pack_into("<I", image, funcs + 4, forwarders + 15)  # SynthMid -> synth.NtSynthWait
    struct.pack_into("<I", image, DIRS + 4, 0x140)  # the directory now spans the forwarder strings
    parsed = parse_image(reader(image))
    assert [e.name for e in parsed.exports] == ["SynthOuter", "SynthStart"]
    stack = walk_image(image)
    assert [f.address for f in stack.frames] == [BASE + 0x100A, RA1, RA2, RA3]
    assert stack.frames[0].symbol_info == "c:\\windows\\system32\\synth.dll+0x100a"


def test_overlapping_sections_are_noted_and_the_walk_is_unchanged():
    image = genuine()
    struct.pack_into("<II", image, SECTIONS + 40 + 8, 0x5000, 0x1000)  # .rdata now spans .text
    parsed = parse_image(reader(image))
    assert "sections overlap (.text and .rdata)" in parsed.notes
    stack = walk_image(image)
    assert [f.address for f in stack.frames] == [BASE + 0x100A, RA1, RA2, RA3]


def test_unwind_info_outside_the_image_is_said_on_the_frame_the_scan_found():
    image = genuine()
    struct.pack_into("<I", image, pdata_entry(0) + 8, 0x7FFFFFF0)  # SynthMid's UnwindInfoAddress
    stack = walk_image(image)
    assert [f.address for f in stack.frames] == [BASE + 0x100A, RA1, RA2, RA3]
    assert stack.frames[2].method == FoundBy.SCANNED
    assert "UNWIND_INFO at rva 0x7ffffff0 not present" in stack.frames[2].note
    assert stack.frames[2].to_ecs()["note"] == stack.frames[2].note


def test_runtime_function_outside_the_image_is_dropped_with_a_note():
    image = genuine()
    struct.pack_into("<II", image, pdata_entry(1), 0xFFFFFF00, 0xFFFFFFF0)  # SynthOuter moved outside
    parsed = parse_image(reader(image))
    assert ".pdata entries dropped (1 with begin > end or outside the image)" in parsed.notes
    assert len(parsed.runtime_functions) == 2
    assert walk_image(image).stop_reason is not None


def chained_cycle() -> bytearray:
    """SynthMid's UNWIND_INFO chains to SynthOuter's, which chains back: A -> B -> A."""
    placeholder = (0, 0, 0)
    funcs = [
        (0x1100, 0x1110, unwind_info([(5, 2, 3), (1, 0, 3)], prolog=5, chained=placeholder)),
        (0x1200, 0x120B, unwind_info([(4, 2, 4)], prolog=4, chained=placeholder)),
        FUNCS[2],
    ]
    image = bytearray(build_pe(code_bytes(), funcs, EXPORTS))
    mid, outer = (struct.unpack_from("<I", image, pdata_entry(i) + 8)[0] for i in (0, 1))
    struct.pack_into("<III", image, mid + 8, 0x1200, 0x120B, outer)  # after 2 codes
    struct.pack_into("<III", image, outer + 8, 0x1100, 0x1110, mid)  # after 1 code (+1 pad slot)
    return image


def test_chained_unwind_cycle_is_detected_and_reported():
    image = chained_cycle()
    parsed = parse_image(reader(image))
    mid = parsed.function_at(0x1100)
    assert root_function(parsed, mid) in parsed.runtime_functions  # bounded, whatever it returns
    stack = walk_image(image)
    assert stack.stop_reason is not None
    assert BASE + 0x100A == stack.frames[0].address
    noted = [f.note for f in stack.frames if f.note] + ([stack.note] if stack.note else [])
    assert any("chained unwind info loops" in n for n in noted), (noted, stack.stop_reason)


def test_unsorted_pdata_is_sorted_back_with_a_note():
    image = genuine()
    first, last = bytes(image[pdata_entry(0) : pdata_entry(1)]), bytes(image[pdata_entry(2) : pdata_entry(3)])
    image[pdata_entry(0) : pdata_entry(1)], image[pdata_entry(2) : pdata_entry(3)] = last, first
    parsed = parse_image(reader(image))
    assert ".pdata not sorted" in parsed.notes
    assert [f.begin for f in parsed.runtime_functions] == [0x1100, 0x1200, 0x1300]
    stack = walk_image(image)
    assert [f.address for f in stack.frames] == [BASE + 0x100A, RA1, RA2, RA3]
    assert [f.method for f in stack.frames] == [FoundBy.UNWOUND] * 4


def test_pdata_entry_with_begin_after_end_is_dropped_and_the_scan_covers_the_frame():
    image = genuine()
    struct.pack_into("<II", image, pdata_entry(0), 0x1110, 0x1100)  # SynthMid: begin > end
    parsed = parse_image(reader(image))
    assert ".pdata entries dropped (1 with begin > end or outside the image)" in parsed.notes
    stack = walk_image(image)
    assert [f.address for f in stack.frames] == [BASE + 0x100A, RA1, RA2, RA3]
    assert stack.frames[2].method == FoundBy.SCANNED


@pytest.mark.parametrize("name_rva", [0xFFFFFFF0, 0x5FFE, 0x3028])
def test_export_name_rvas_outside_or_unterminated_fall_back_to_ordinals(name_rva: int):
    image = genuine()
    names = struct.unpack_from("<I", image, EXPORT_DIR + 32)[0]
    struct.pack_into("<I", image, names, name_rva)  # NtSynthWait's name
    image[0x5FFE:0x6000] = b"AB"  # the last bytes of the image, with no terminator after them
    parsed = parse_image(reader(image))
    assert "NtSynthWait" not in [e.name for e in parsed.exports]
    stack = walk_image(image)
    assert [f.address for f in stack.frames] == [BASE + 0x100A, RA1, RA2, RA3]
    assert stack.frames[0].symbol_info.startswith("c:\\windows\\system32\\synth.dll")


def test_pdata_larger_than_the_image_is_cut_at_its_end():
    image = genuine()
    struct.pack_into("<I", image, DIRS + 24 + 4, 0xFFFFFFF0)  # .pdata size
    struct.pack_into("<I", image, OPT + 56, 0x7FFFFFFF)  # SizeOfImage
    start = time.perf_counter()
    parsed = parse_image(reader(image))
    assert time.perf_counter() - start < SECONDS
    assert [f.begin for f in parsed.runtime_functions] == [0x1100, 0x1200, 0x1300]
    assert walk_image(image).stop_reason is not None


def test_an_image_whose_header_cannot_be_parsed_is_a_frame_note():
    image = genuine()
    struct.pack_into("<I", image, 0x3C, 0xFFFFFF00)  # e_lfanew far outside
    with pytest.raises(ImageError):
        parse_image(reader(image))
    stack = walk_image(image)
    assert stack.frames[0].note.startswith("module not parsed: bad PE header")


def test_the_export_at_an_rva_is_the_first_in_table_order_as_a_linear_search_finds_it():
    """``export_at`` (a binary search, once per thread start) names what ``next(e for e in
    exports if e.rva == rva)`` named: the named alias before an ordinal-only one, None between."""
    aliases = [*EXPORTS, ("SynthAlias", 0x1100), ("ZwSynthWait", 0x1000)]
    image = parse_image(reader(build_pe(code_bytes(), FUNCS, aliases)))
    rvas = {e.rva for e in image.exports}
    assert len(image.exports) > len(rvas)  # aliases share an RVA
    for rva in [*sorted(rvas), 0x1001, 0x10FF, 0x1301, 0, 0x7FFFFFFF]:
        assert image.export_at(rva) == next((e for e in image.exports if e.rva == rva), None)
