"""The x64 unwinder on hand-made unwind data: every opcode, prolog position, epilogs, chains.

mingw never emits version 2 epilog codes, PUSH_MACHFRAME or the *_FAR forms, so these
cases are built by hand from Microsoft's documented encoding.
"""

import struct

import pytest

from callstack_forensics.engine.unwind import (
    UWOP_ALLOC_LARGE,
    UWOP_ALLOC_SMALL,
    UWOP_EPILOG,
    UWOP_PUSH_MACHFRAME,
    UWOP_PUSH_NONVOL,
    UWOP_SAVE_NONVOL,
    UWOP_SAVE_NONVOL_FAR,
    UWOP_SAVE_XMM128,
    UWOP_SAVE_XMM128_FAR,
    UWOP_SET_FPREG,
    Registers,
    StackReader,
    UnwindError,
    parse_unwind_info,
    virtual_unwind,
)

from .synth import CODE_RVA, SynthImage, SynthProcess, unwind_info

BASE = 0x7FF600000000
STACK = 0x10000
RBX, RBP, RSI = 3, 5, 6
RET = BASE + 0x1800  # some return address into the caller


def stack_with(values: dict[int, int], code: bytes | None = None) -> StackReader:
    """Stack memory with ``values`` written; ``code`` mapped at BASE+CODE_RVA (epilog reads)."""
    proc = SynthProcess()
    proc.map(STACK, bytes(0x4000))
    if code is not None:
        proc.map(BASE + CODE_RVA, code, "R-X")
    for addr, val in values.items():
        proc.write_u64(addr, val)
    return StackReader(proc.read)


def image_for(info: bytes, code: bytes = b"\x90" * 0x100, begin: int = CODE_RVA, end: int = CODE_RVA + 0x100, more=()):
    _, image = SynthImage(code, [(begin, end, info), *more]).build()
    return image


def unwind(image, rip_rva, regs, stack, frame0=False):
    """``rip_rva`` is an offset into the code at CODE_RVA."""
    rip_rva += CODE_RVA
    fn = image.function_at(rip_rva if frame0 else rip_rva - 1)
    r = Registers({"rip": BASE + rip_rva, **regs})
    return virtual_unwind(image, BASE, fn, r, stack, in_prolog_possible=frame0)


def test_push_alloc_large_and_set_fpreg_use_the_frame_register_not_rsp():
    # push rbp; push rbx; sub rsp,0x128; lea rbp,[rsp+0x20]
    info = unwind_info(
        [(14, UWOP_SET_FPREG, 0), (9, UWOP_ALLOC_LARGE, 0), (None, 0x128 // 8, None), (2, UWOP_PUSH_NONVOL, RBX), (1, UWOP_PUSH_NONVOL, RBP)],
        prolog=14, frame_reg=RBP, frame_off=2,
    )
    rsp0 = STACK + 0x2000  # [rsp0] = return address at entry
    rsp1 = rsp0 - 16 - 0x128
    stack = stack_with({rsp0: RET, rsp0 - 8: 0xAAAA, rsp0 - 16: 0xBBBB})
    # rsp is deliberately wrong: with a frame register the frame comes from rbp
    out = unwind(image_for(info), 0x50, {"rsp": rsp1 - 0x40, "rbp": rsp1 + 0x20}, stack)
    assert (out.rip, out.rsp, out.get("rbp"), out.get("rbx")) == (RET, rsp0 + 8, 0xAAAA, 0xBBBB)


def test_frame0_inside_prolog_applies_only_executed_codes():
    info = unwind_info(
        [(9, UWOP_ALLOC_LARGE, 0), (None, 0x128 // 8, None), (2, UWOP_PUSH_NONVOL, RBX), (1, UWOP_PUSH_NONVOL, RBP)], prolog=9
    )
    rsp0 = STACK + 0x2000
    stack = stack_with({rsp0: RET, rsp0 - 8: 0xAAAA, rsp0 - 16: 0xBBBB})
    # stopped after the two pushes, before "sub rsp": the allocation must not be undone
    out = unwind(image_for(info), 2, {"rsp": rsp0 - 16}, stack, frame0=True)
    assert (out.rip, out.rsp, out.get("rbx")) == (RET, rsp0 + 8, 0xBBBB)
    # after only the first push
    out = unwind(image_for(info), 1, {"rsp": rsp0 - 8}, stack, frame0=True)
    assert (out.rip, out.rsp, out.get("rbp")) == (RET, rsp0 + 8, 0xAAAA)


def test_alloc_large_32bit_form_and_alloc_small():
    size = 0x123458  # > 512K - 8: needs the 32-bit operand form
    info = unwind_info([(16, UWOP_ALLOC_SMALL, 3), (12, UWOP_ALLOC_LARGE, 1), (None, size & 0xFFFF, None), (None, size >> 16, None)], prolog=16)
    rsp0 = STACK + 0x3000
    rsp = rsp0 - size - 0x20
    proc = SynthProcess()
    proc.map(rsp - 0x100, bytes(rsp0 - rsp + 0x200))
    proc.write_u64(rsp0, RET)
    out = unwind(image_for(info), 0x80, {"rsp": rsp}, StackReader(proc.read))
    assert (out.rip, out.rsp) == (RET, rsp0 + 8)
    assert parse_unwind_info(image_for(info), image_for(info).function_at(CODE_RVA).unwind).frame_size() == size + 0x20


def test_save_nonvol_near_and_far_restore_from_the_frame():
    # sub rsp,0x40 ; mov [rsp+0x38],rbx ; mov [rsp+0x30],rsi (FAR form: 32-bit offset)
    info = unwind_info(
        [(8, UWOP_SAVE_NONVOL_FAR, RSI), (None, 0x30, None), (None, 0, None), (8, UWOP_SAVE_NONVOL, RBX), (None, 0x38 // 8, None), (4, UWOP_ALLOC_SMALL, 7)],
        prolog=8,
    )
    rsp1 = STACK + 0x1000
    rsp0 = rsp1 + 0x40
    stack = stack_with({rsp0: RET, rsp1 + 0x30: 0x5151, rsp1 + 0x38: 0xB0B0})
    out = unwind(image_for(info), 0x40, {"rsp": rsp1}, stack)
    assert (out.rip, out.rsp, out.get("rsi"), out.get("rbx")) == (RET, rsp0 + 8, 0x5151, 0xB0B0)


def test_xmm_saves_consume_their_slots_and_are_skipped():
    info = unwind_info(
        [(12, UWOP_SAVE_XMM128_FAR, 7), (None, 0x20, None), (None, 0, None), (10, UWOP_SAVE_XMM128, 6), (None, 1, None), (4, UWOP_ALLOC_SMALL, 9), (1, UWOP_PUSH_NONVOL, RBX)],
        prolog=12,
    )
    rsp1 = STACK + 0x1000
    rsp0 = rsp1 + 0x50 + 8
    stack = stack_with({rsp0: RET, rsp1 + 0x50: 0xB0B0})
    out = unwind(image_for(info), 0x40, {"rsp": rsp1}, stack)
    assert (out.rip, out.rsp, out.get("rbx")) == (RET, rsp0 + 8, 0xB0B0)


@pytest.mark.parametrize("error_code", [0, 1])
def test_push_machframe_with_and_without_error_code(error_code):
    info = unwind_info([(1, UWOP_PUSH_MACHFRAME, error_code)], prolog=1)
    rsp = STACK + 0x1000
    base = rsp + 8 * error_code
    stack = stack_with({base: RET, base + 8: 0x33, base + 16: 0x202, base + 24: STACK + 0x3000, base + 32: 0x2B})
    out = unwind(image_for(info), 0x40, {"rsp": rsp}, stack)
    assert (out.rip, out.rsp) == (RET, STACK + 0x3000)


def test_version2_epilog_codes_are_parsed_and_skipped():
    info = unwind_info(
        [(3, UWOP_EPILOG, 1), (0x20, UWOP_EPILOG, 0), (4, UWOP_ALLOC_SMALL, 4), (1, UWOP_PUSH_NONVOL, RBX)], version=2, prolog=4
    )
    image = image_for(info)
    parsed = parse_unwind_info(image, image.function_at(CODE_RVA).unwind)
    assert parsed.version == 2 and parsed.epilog_size == 3 and parsed.epilogs == (3, 0x20)
    assert [c.op for c in parsed.codes] == [UWOP_ALLOC_SMALL, UWOP_PUSH_NONVOL]
    rsp1 = STACK + 0x1000
    stack = stack_with({rsp1 + 0x28: 0xB0B0, rsp1 + 0x30: RET})
    out = unwind(image, 0x40, {"rsp": rsp1}, stack)
    assert (out.rip, out.rsp, out.get("rbx")) == (RET, rsp1 + 0x38, 0xB0B0)


def test_frame0_in_epilog_is_emulated():
    # add rsp,0x28 ; pop rbx ; ret
    code = bytearray(b"\x90" * 0x100)
    epi = 0x60
    code[epi : epi + 6] = b"\x48\x83\xc4\x28\x5b\xc3"
    info = unwind_info([(5, UWOP_ALLOC_SMALL, 4), (1, UWOP_PUSH_NONVOL, RBX)], prolog=5)
    rsp1 = STACK + 0x1000
    stack = stack_with({rsp1 + 0x28: 0xB0B0, rsp1 + 0x30: RET}, bytes(code))
    out = unwind(image_for(info, bytes(code)), epi, {"rsp": rsp1}, stack, frame0=True)
    assert (out.rip, out.rsp, out.get("rbx")) == (RET, rsp1 + 0x38, 0xB0B0)
    # without the code bytes the epilog cannot be recognised: the prolog codes would be
    # applied to an already released frame, which is exactly the error emulation avoids
    wrong = unwind(image_for(info, bytes(code)), epi + 4, {"rsp": rsp1 + 0x28}, stack_with({rsp1 + 0x28: 0xB0B0, rsp1 + 0x30: RET}), frame0=True)
    assert wrong.rip != RET
    # at the pop, the allocation is already released: only pop + ret remain
    out = unwind(image_for(info, bytes(code)), epi + 4, {"rsp": rsp1 + 0x28}, stack, frame0=True)
    assert (out.rip, out.rsp, out.get("rbx")) == (RET, rsp1 + 0x38, 0xB0B0)


def test_chained_unwind_info_applies_the_parent_codes():
    parent = unwind_info([(1, UWOP_PUSH_NONVOL, RBX)], prolog=1)
    # the parent's UNWIND_INFO is laid out first at 0x3000 (begin 0x1000..0x1040)
    child = unwind_info([(4, UWOP_ALLOC_SMALL, 1)], prolog=4, chained=(CODE_RVA, CODE_RVA + 0x40, 0x3000))
    _, image = SynthImage(b"\x90" * 0x100, [(CODE_RVA, CODE_RVA + 0x40, parent), (CODE_RVA + 0x80, CODE_RVA + 0xC0, child)]).build()
    rsp1 = STACK + 0x1000
    stack = stack_with({rsp1 + 0x10: 0xB0B0, rsp1 + 0x18: RET})
    out = unwind(image, 0xA0, {"rsp": rsp1}, stack)
    assert (out.rip, out.rsp, out.get("rbx")) == (RET, rsp1 + 0x20, 0xB0B0)


def test_chained_unwind_cycle_is_an_error_not_a_hang():
    # two records chaining to each other
    a = unwind_info([(4, UWOP_ALLOC_SMALL, 1)], chained=(CODE_RVA + 0x80, CODE_RVA + 0xC0, 0x3014))
    b = unwind_info([(4, UWOP_ALLOC_SMALL, 1)], chained=(CODE_RVA, CODE_RVA + 0x40, 0x3000))
    assert len(a) == 0x14  # so b is laid out at 0x3014
    _, image = SynthImage(b"\x90" * 0x100, [(CODE_RVA, CODE_RVA + 0x40, a), (CODE_RVA + 0x80, CODE_RVA + 0xC0, b)]).build()
    stack = stack_with({})
    with pytest.raises(UnwindError, match="loops"):
        unwind(image, 0x20, {"rsp": STACK + 0x1000}, stack)


def test_leaf_without_unwind_data_returns_to_the_value_at_rsp():
    stack = stack_with({STACK + 0x100: RET})
    out = virtual_unwind(image_for(unwind_info([])), BASE, None, Registers({"rip": BASE + 0x4000, "rsp": STACK + 0x100}), stack, True)
    assert (out.rip, out.rsp) == (RET, STACK + 0x108)


def test_unknown_opcode_and_bad_version_are_errors():
    bad = bytes([3, 0, 0, 0])
    image = image_for(bad)
    with pytest.raises(UnwindError, match="version"):
        parse_unwind_info(image, image.function_at(CODE_RVA).unwind)
    bad_op = unwind_info([(1, 11, 0)])
    image = image_for(bad_op)
    with pytest.raises(UnwindError, match="opcode"):
        parse_unwind_info(image, image.function_at(CODE_RVA).unwind)
