"""The unwinder on random bytes and random UNWIND_INFO records: registers or UnwindError, never a loop.

``parse_unwind_info`` documents UnwindError for unusable records; ``virtual_unwind`` documents
UnwindError (bad unwind data) and MemoryMissing (stack not present). Nothing else may escape,
chains may point anywhere (themselves included), and every call returns within the time bound.
"""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from callstack_forensics.memory import MemoryMissing
from callstack_forensics.engine.symbols import export_for, root_function
from callstack_forensics.engine.unwind import (
    UWOP_ALLOC_LARGE, UWOP_ALLOC_SMALL, UWOP_PUSH_MACHFRAME, UWOP_PUSH_NONVOL, UWOP_SAVE_NONVOL,
    UWOP_SAVE_NONVOL_FAR, UWOP_SAVE_XMM128, UWOP_SAVE_XMM128_FAR, UWOP_SET_FPREG, Registers, StackReader,
    UnwindError, UnwindInfo, parse_unwind_info, virtual_unwind,
)
from tests.engine.synth import CODE_RVA, UNWIND_RVA, SynthImage, SynthProcess

from .common import PROPERTY, bounded

BASE = 0x7FF600000000
STACK = 0x10000
STACK_SIZE = 0x2000
STRIDE = 0x240  # each record's slot in the image: room for 255 codes and a chained entry

record_bytes = st.binary(min_size=0, max_size=64)


def image_with(records: list[bytes], code: bytes = b"\xcc" * 0x100):
    """An image whose functions i use ``records[i]`` (laid out every STRIDE bytes), 0x40 code each."""
    functions = [(CODE_RVA + 0x40 * i, CODE_RVA + 0x40 * (i + 1), r.ljust(STRIDE, b"\0"))
                 for i, r in enumerate(records)]
    return SynthImage(code, functions).build()[1]


def stack_reader(data: bytes, code: bytes = b"") -> StackReader:
    proc = SynthProcess()
    proc.map(STACK, data.ljust(STACK_SIZE, b"\0"))
    if code:
        proc.map(BASE + CODE_RVA, code, "R-X")
    return StackReader(proc.read)


@PROPERTY
@given(record_bytes)
def test_parse_unwind_info_on_random_bytes(record):
    image = image_with([record])
    with bounded():
        try:
            info = parse_unwind_info(image, UNWIND_RVA)
        except UnwindError:
            return
    assert isinstance(info, UnwindInfo) and info.version in (1, 2)
    assert len(info.codes) <= record.ljust(4, b"\0")[2]  # never more codes than the count slots


# ---- well-formed records -----------------------------------------------------------------

_OPS = st.one_of(
    st.tuples(st.just(UWOP_PUSH_NONVOL), st.integers(0, 15), st.just(())),
    st.tuples(st.just(UWOP_ALLOC_SMALL), st.integers(0, 15), st.just(())),
    st.tuples(st.just(UWOP_ALLOC_LARGE), st.just(0), st.tuples(st.integers(0, 0xFFFF))),
    st.tuples(st.just(UWOP_ALLOC_LARGE), st.just(1), st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))),
    st.tuples(st.just(UWOP_SET_FPREG), st.just(0), st.just(())),
    st.tuples(st.just(UWOP_SAVE_NONVOL), st.integers(0, 15), st.tuples(st.integers(0, 0xFFFF))),
    st.tuples(st.just(UWOP_SAVE_NONVOL_FAR), st.integers(0, 15), st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))),
    st.tuples(st.just(UWOP_SAVE_XMM128), st.integers(0, 15), st.tuples(st.integers(0, 0xFFFF))),
    st.tuples(st.just(UWOP_SAVE_XMM128_FAR), st.integers(0, 15), st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))),
    st.tuples(st.just(UWOP_PUSH_MACHFRAME), st.integers(0, 1), st.just(())),
)


def encode(codes, frame_reg: int, frame_off: int, prolog: int, chained: tuple[int, int, int] | None = None) -> bytes:
    slots = []
    for offset, (op, info, extra) in codes:
        slots.append(offset | (op << 8) | (info << 12))
        slots.extend(extra)
    flags = 4 if chained else 0
    head = bytes([1 | (flags << 3), prolog, len(slots), frame_reg | (frame_off << 4)])
    body = struct.pack(f"<{len(slots)}H", *slots) + (b"\0\0" if len(slots) & 1 else b"")
    return head + body + (struct.pack("<III", *chained) if chained else b"")


well_formed = st.tuples(
    st.lists(st.tuples(st.integers(0, 255), _OPS), max_size=12).filter(lambda c: sum(1 + len(x[1][2]) for x in c) <= 255),
    st.sampled_from([r for r in range(16) if r != 4]),  # RSP is no frame register (UnwindError)
    st.integers(0, 15), st.integers(0, 255),
)


@PROPERTY
@given(well_formed)
def test_well_formed_records_decode_to_exactly_their_codes(record):
    codes, frame_reg, frame_off, prolog = record
    image = image_with([encode(codes, frame_reg, frame_off, prolog)])
    info = parse_unwind_info(image, UNWIND_RVA)
    assert [(c.offset, c.op, c.info) for c in info.codes] == [(o, op, i) for o, (op, i, _) in codes]
    assert (info.frame_register, info.frame_offset, info.prolog_size) == (frame_reg, frame_off, prolog)
    assert info.chained is None


@PROPERTY
@given(well_formed, st.binary(min_size=0, max_size=STACK_SIZE), st.integers(0, STACK_SIZE - 8),
       st.integers(0, 0x3F), st.booleans(), st.one_of(st.none(), st.integers(0, (1 << 64) - 1)))
def test_virtual_unwind_returns_registers_or_a_documented_error(record, stack, rsp_offset, rip_offset, frame0, rbp):
    codes, frame_reg, frame_off, prolog = record
    image = image_with([encode(codes, frame_reg, frame_off, prolog)])
    regs = Registers({"rip": BASE + CODE_RVA + rip_offset, "rsp": STACK + rsp_offset, "rbp": rbp, "rbx": 0})
    function = image.function_at(CODE_RVA + rip_offset)
    with bounded():
        try:
            out = virtual_unwind(image, BASE, function, regs, stack_reader(stack, b"\xcc" * 0x40), frame0)
        except (UnwindError, MemoryMissing):
            return
    assert isinstance(out.rip, int) and isinstance(out.rsp, int)
    # Without a frame pointer (RBP may hold anything), an rsp restored from the stack or a machine
    # frame, the caller's RSP is the callee's plus what the prolog took plus the return address.
    moved_by_data = any(op in (UWOP_SET_FPREG, UWOP_PUSH_MACHFRAME)
                        or (op in (UWOP_SAVE_NONVOL, UWOP_SAVE_NONVOL_FAR) and info == 4)
                        for _, (op, info, _) in codes)
    if not moved_by_data:
        assert out.rsp > regs.rsp


# ---- chains --------------------------------------------------------------------------------

@PROPERTY
@given(st.lists(st.tuples(well_formed, st.integers(-1, 3)), min_size=1, max_size=4),
       st.binary(min_size=0, max_size=STACK_SIZE), st.integers(0, 0xFF), st.booleans())
def test_chains_between_records_end_or_fail_cleanly(spec, stack, rip_offset, frame0):
    """Record i chains to record ``target`` (-1: none; itself and back-and-forth included)."""
    records = []
    for (codes, frame_reg, frame_off, prolog), target in spec:
        chained = None
        if 0 <= target < len(spec):
            chained = (CODE_RVA + 0x40 * target, CODE_RVA + 0x40 * (target + 1), UNWIND_RVA + STRIDE * target)
        records.append(encode(codes, frame_reg, frame_off, prolog, chained))
    image = image_with(records)
    rva = CODE_RVA + rip_offset % (0x40 * len(spec))
    function = image.function_at(rva)
    regs = Registers({"rip": BASE + rva, "rsp": STACK + 0x1000, "rbp": STACK + 0x1800, "rbx": 0})
    with bounded():
        export_for(image, rva)
        if function is not None:
            assert root_function(image, function) is not None
        try:
            virtual_unwind(image, BASE, function, regs, stack_reader(stack), frame0)
        except (UnwindError, MemoryMissing):
            pass


@PROPERTY
@given(st.lists(record_bytes, min_size=1, max_size=4), st.binary(min_size=0, max_size=0x400),
       st.integers(0, 0xFF), st.booleans(), st.binary(min_size=0x100, max_size=0x100))
def test_random_records_and_random_code(records, stack, rip_offset, frame0, code):
    """Random bytes as records and as code: epilog emulation reads the code, chains go anywhere."""
    image = image_with(records, code)
    rva = CODE_RVA + rip_offset % (0x40 * len(records))
    function = image.function_at(rva)
    regs = Registers({"rip": BASE + rva, "rsp": STACK + 0x100, "rbp": STACK + 0x200})
    with bounded():
        if function is not None:
            root_function(image, function)
        try:
            virtual_unwind(image, BASE, function, regs, stack_reader(stack, code), frame0)
        except (UnwindError, MemoryMissing):
            pass
