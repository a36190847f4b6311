"""Stack cases: a genuine thread with its stack pages and registers corrupted, walked.

The walk must end with a ThreadStack, a stop reason and at most ``max_frames`` frames, and what
it returns must serialise (``to_json``), whatever the stack holds: return addresses swapped for
other threads' ones, pointers into other pages, slots pointing at themselves (cycles), smeared
runs, missing pages, registers and TEB bounds that make no sense.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace

from callstack_forensics.engine.context import ProcessContext, WalkOptions
from callstack_forensics.memory import PAGE_SIZE, MemoryMissing, ThreadInfo, Wow64Context
from callstack_forensics.engine.stack import ThreadStack
from callstack_forensics.engine.walker import walk_thread

from .corpus import BaseProcess, StackSpan
from .counts import note_kind
from .mutate import byte_run, flip_bits
from .overlay import OverlayMemory

MUTATION_COUNTS = (1, 1, 1, 2, 2, 3, 4, 8, 16, 64)
NEAR_TOP = 0x600  # most frames of the genuine stacks lie within this distance of the stack pointer


class InvariantBroken(AssertionError):
    """The engine returned, but what it returned breaks its own contract (counted as a crash)."""


@dataclass(slots=True)
class StackCase:
    """The corrupted state of one thread: its stack pages and its thread record."""

    thread: ThreadInfo
    spans: list[StackSpan]
    pages: dict[int, bytearray | None]


def run_stack_case(rng: random.Random, base: BaseProcess, options: WalkOptions, label: str) -> str | None:
    """Corrupt one thread of ``base`` and walk it; None when the walk is complete, else its note kind."""
    thread = rng.choice(base.threads)
    case = StackCase(thread, base.stacks[thread.tid], {})
    for span in case.spans:
        for page in range(span.low & ~(PAGE_SIZE - 1), span.top, PAGE_SIZE):
            try:
                case.pages[page] = bytearray(base.memory.read(page, PAGE_SIZE))
            except MemoryMissing:
                continue  # not whole in the source (a minidump's partial page): left as it is
    for _ in range(rng.choice(MUTATION_COUNTS)):
        rng.choice(OPERATORS)(rng, case, base)
    pages = {page: (bytes(data) if data is not None else None) for page, data in case.pages.items()}
    memory = OverlayMemory(base.memory, pages, [case.thread])
    ctx = ProcessContext(memory, options, base.images)
    stack = walk_thread(ctx, case.thread)
    check_stack(stack, options)
    if stack.complete:
        return None
    stop = stack.stop_reason.value if stack.stop_reason else "no stop reason"
    return note_kind(f"{label} {stop}", stack.note, last=True) if stack.note else f"{label}: {stop}"


def check_stack(stack: ThreadStack, options: WalkOptions) -> None:
    """The walker's contract, on any input."""
    if not isinstance(stack, ThreadStack) or stack.stop_reason is None:
        frames = len(stack.frames) if isinstance(stack, ThreadStack) else "?"
        raise InvariantBroken(f"walk ended without a stop reason ({frames} frames)")
    if len(stack.frames) > options.max_frames:
        raise InvariantBroken(f"{len(stack.frames)} frames, more than max_frames={options.max_frames}")
    if [f.index for f in stack.frames] != list(range(len(stack.frames))):
        raise InvariantBroken("frame indexes are not 0..n-1")
    json.dumps(stack.to_json())


# ---- operators ----------------------------------------------------------------------------


def _span(rng: random.Random, case: StackCase) -> StackSpan:
    return rng.choice(case.spans)


def _stack_pointer(case: StackCase, span: StackSpan) -> int:
    thread = case.thread
    if span.width == 4 and thread.wow64 is not None:
        return thread.wow64.esp
    regs = thread.registers or {}
    return regs.get("rsp", regs.get("esp", span.low))


def _slot(rng: random.Random, case: StackCase, span: StackSpan) -> int:
    """An aligned stack slot, mostly among the frames above the stack pointer."""
    sp = _stack_pointer(case, span)
    if span.low <= sp < span.top and rng.random() < 0.75:
        lo, hi = sp, min(span.top, sp + NEAR_TOP)
    else:
        lo, hi = span.low, span.top
    if hi - lo < span.width:
        lo, hi = span.low, span.top
    return lo + rng.randrange(0, (hi - lo) // span.width) * span.width


def _write(case: StackCase, address: int, blob: bytes) -> None:
    for i, byte in enumerate(blob):
        page = (address + i) & ~(PAGE_SIZE - 1)
        data = case.pages.get(page)
        if data is not None:
            data[address + i - page] = byte


def _pointer(rng: random.Random, case: StackCase, base: BaseProcess, span: StackSpan, slot: int) -> int:
    """A value that is plausible enough to be followed, and wrong."""
    pick = rng.random()
    if pick < 0.3 and base.return_addresses:
        value = rng.choice(base.return_addresses)  # another frame's or thread's return address
    elif pick < 0.4 and base.return_addresses:
        value = rng.choice(base.return_addresses) + rng.choice((-5, -2, -1, 1, 2, 3, 8))
    elif pick < 0.55 and base.code_addresses:
        value = rng.choice(base.code_addresses) + rng.randrange(0, 0x1000)
    elif pick < 0.75:
        other = rng.choice([s for spans in base.stacks.values() for s in spans])
        value = other.low + rng.randrange(0, other.top - other.low)  # into another stack page
    elif pick < 0.85:
        value = slot + rng.choice((-2, -1, 0, 0, 1, 2)) * span.width  # self-pointing: cycles
    else:
        value = rng.choice((0, 1, 0x10000, 0x4141414141414141, 0xFFFFF80000000000, (1 << 64) - 1, 1 << 63,
                            rng.getrandbits(64)))
    return value & ((1 << (8 * span.width)) - 1)


def op_flip(rng: random.Random, case: StackCase, base: BaseProcess) -> None:
    span = _span(rng, case)
    slot = _slot(rng, case, span)
    page = slot & ~(PAGE_SIZE - 1)
    data = case.pages.get(page)
    if data is not None:
        flip_bits(rng, data, slot - page, slot - page + span.width, rng.choice((1, 1, 2, 8)))


def op_run(rng: random.Random, case: StackCase, base: BaseProcess) -> None:
    span = _span(rng, case)
    slot = _slot(rng, case, span)
    page = slot & ~(PAGE_SIZE - 1)
    data = case.pages.get(page)
    if data is not None:
        byte_run(rng, data, slot - page, PAGE_SIZE)


def op_pointer(rng: random.Random, case: StackCase, base: BaseProcess) -> None:
    span = _span(rng, case)
    slot = _slot(rng, case, span)
    _write(case, slot, _pointer(rng, case, base, span, slot).to_bytes(span.width, "little"))


def op_cycle(rng: random.Random, case: StackCase, base: BaseProcess) -> None:
    """Two slots that point at each other (an EBP chain or a saved-RBP loop)."""
    span = _span(rng, case)
    a, b = _slot(rng, case, span), _slot(rng, case, span)
    _write(case, a, b.to_bytes(span.width, "little"))
    _write(case, b, a.to_bytes(span.width, "little"))
    if rng.random() < 0.5 and base.return_addresses:
        ret = rng.choice(base.return_addresses) & ((1 << (8 * span.width)) - 1)
        _write(case, a + span.width, ret.to_bytes(span.width, "little"))
        _write(case, b + span.width, ret.to_bytes(span.width, "little"))


def op_truncate(rng: random.Random, case: StackCase, base: BaseProcess) -> None:
    span = _span(rng, case)
    cut = _slot(rng, case, span) & ~(PAGE_SIZE - 1)
    if rng.random() < 0.5:
        case.pages[cut] = None  # one page missing
    else:
        for page in range(cut, span.top, PAGE_SIZE):
            case.pages[page] = None  # the stack ends early


def op_registers(rng: random.Random, case: StackCase, base: BaseProcess) -> None:
    thread = case.thread
    span = _span(rng, case)
    value = _pointer(rng, case, base, span, _slot(rng, case, span))
    if span.width == 4 and thread.wow64 is not None:
        name = rng.choice(("eip", "esp", "ebp"))
        if name == "esp" and rng.random() < 0.5:
            value = (thread.wow64.esp + rng.choice((-8, -4, 4, 8, 0x100))) & 0xFFFFFFFF
        case.thread = replace(thread, wow64=replace(thread.wow64, **{name: value}))
        return
    regs = dict(thread.registers or {})
    name = rng.choice(("rip", "rsp", "rbp", "rbx", "rsi", "rdi", "drop"))
    if name == "drop":
        regs.pop(rng.choice(("rip", "rsp", "rbp")), None)
    elif name == "rsp" and rng.random() < 0.5 and "rsp" in regs:
        regs["rsp"] += rng.choice((-0x1000, -8, -1, 1, 8, 0x28))
    else:
        regs[name] = value
    case.thread = replace(thread, registers=regs)


def op_bounds(rng: random.Random, case: StackCase, base: BaseProcess) -> None:
    """TEB stack bounds that lie: absent, swapped, zero, far away."""
    thread = case.thread
    choices = (None, 0, 1, 0x1000, 0xFFFFFFFF, (1 << 47) - 1, (1 << 64) - 1, thread.stack_limit, thread.stack_base)
    if thread.wow64 is not None and rng.random() < 0.5:
        ctx = thread.wow64
        case.thread = replace(thread, wow64=Wow64Context(ctx.eip, ctx.esp, ctx.ebp, rng.choice(choices),
                                                         rng.choice(choices)))
        return
    case.thread = replace(thread, stack_base=rng.choice(choices), stack_limit=rng.choice(choices))


OPERATORS = (op_flip, op_flip, op_run, op_pointer, op_pointer, op_pointer, op_cycle, op_truncate, op_registers,
             op_bounds)
