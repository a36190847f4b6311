"""Rebuild every thread's user-mode call stack from a :class:`ProcessMemory`.

The x64 walk unwinds frame by frame from the images' own unwind data; where a
frame cannot be unwound it falls back to a call-site-validated scan and then
resumes unwinding from what the scan found. WOW64 threads get their 32-bit
frames spliced in where the 64-bit stack enters the 32-bit emulation (see
:mod:`callstack_forensics.engine.wow64`). Every thread yields a :class:`ThreadStack`,
with a note and a stop reason rather than an exception when something is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from .context import ProcessContext, WalkOptions
from .decorate import make_frame
from ..memory import ExceptionInfo, MemoryMissing, ProcessMemory, ThreadInfo
from .consistency import call_leads_to, is_kernel_entry
from .integrity import verdict
from .modules import ImageCache
from .scan import choose_return
from .stack import ExceptionStack, FoundBy, Frame, StopReason, ThreadStack, Trust
from .unwind import Registers, StackReader, UnwindError, leaf_epilog, leaf_unwind, virtual_unwind
from .wow64 import splice_wow64, walk_x86

X64_CONTEXT_SIZE = 0x4D0  # sizeof(CONTEXT): the exception dispatch frame holds one
X86_CONTEXT_SIZE = 0x2CC

__all__ = ["WalkOptions", "walk_process", "walk_thread", "walk_registers"]


def walk_process(
    memory: ProcessMemory,
    options: WalkOptions | None = None,
    images: ImageCache | None = None,
) -> list[ThreadStack]:
    """One :class:`ThreadStack` per thread of the process, in the source's order."""
    ctx = ProcessContext(memory, options or WalkOptions(), images or ImageCache())
    return [walk_thread(ctx, thread) for thread in memory.threads()]


def walk_thread(ctx: ProcessContext, thread: ThreadInfo) -> ThreadStack:
    """The stack of one thread; never raises for bad memory, says why in ``note``. A thread
    that raised a crash dump's exception also gets the stack at the fault (``exception``)."""
    proc = ctx.memory.process
    stack = ThreadStack(proc.pid, thread.tid, proc.name, thread=thread, is_wow64=thread.wow64 is not None)
    try:
        _fill(ctx, thread, stack)
    except (MemoryMissing, UnwindError, ValueError, OverflowError) as exc:
        stack.note = f"walk aborted: {exc}"
        stack.stop_reason = stack.stop_reason or StopReason.UNREADABLE
    if thread.exception is not None:
        stack.exception = walk_exception(ctx, thread, thread.exception)
    stack.integrity = verdict(ctx, stack, thread)
    return stack


def walk_exception(ctx: ProcessContext, thread: ThreadInfo, exception: ExceptionInfo) -> ExceptionStack:
    """The faulting thread's stack from the exception's own context, as WinDbg's ``.ecxr``."""
    out = ExceptionStack(exception.code, exception.name, exception.address, exception.describe())
    regs = exception.registers
    if regs is None:
        out.stop_reason, out.note = StopReason.NO_CONTEXT, exception.note or "exception context not in the dump"
        return out
    try:
        if "rip" in regs:
            walk = walk_registers(ctx, regs, thread.stack_limit, thread.stack_base)
            out.frames, out.stop_reason, out.note = walk.frames, walk.stop, walk.note
        elif "eip" in regs and "esp" in regs:
            out.frames, out.stop_reason, out.note = walk_x86(
                ctx, regs["eip"], regs["esp"], regs.get("ebp", 0), thread.stack_limit, thread.stack_base)
        else:
            out.stop_reason, out.note = StopReason.NO_CONTEXT, "exception context has no instruction pointer"
    except (MemoryMissing, UnwindError, ValueError, OverflowError) as exc:
        out.note = f"walk aborted: {exc}"
        out.stop_reason = out.stop_reason or StopReason.UNREADABLE
    return out


def _scan_ceiling(thread: ThreadInfo) -> int | None:
    """Where the scans of the thread's current walk must stop: below the exception dispatch
    frame of the exception it raised. The frames above belong to the faulting stack (walked
    from the exception's context), and the dead stack just below the faulting frame still
    holds the return addresses of the calls it made before it faulted: stale, never frames."""
    exception = thread.exception
    if exception is None or exception.registers is None:
        return None
    sp = exception.registers.get("rsp", exception.registers.get("esp"))
    current = thread.rsp if thread.rsp is not None else (thread.registers or {}).get("esp")
    if sp is None or current is None or not current < sp <= (thread.stack_base or sp):
        return None
    context_size = X64_CONTEXT_SIZE if "rsp" in exception.registers else X86_CONTEXT_SIZE
    return max(current, sp - context_size)


def _fill(ctx: ProcessContext, thread: ThreadInfo, stack: ThreadStack) -> None:
    regs = thread.registers
    if regs is None and thread.wow64 is None:
        stack.stop_reason = StopReason.NO_CONTEXT
        stack.note = thread.note or "no user-mode context"
        return
    ceiling = _scan_ceiling(thread)
    if regs is not None and "rip" in regs:
        walk = walk_registers(ctx, regs, thread.stack_limit, thread.stack_base, ceiling)
        stack.frames, stack.stop_reason, stack.note = walk.frames, walk.stop, walk.note
    if thread.wow64 is not None:
        frames32, stop32, note32 = walk_x86(
            ctx,
            thread.wow64.eip,
            thread.wow64.esp,
            thread.wow64.ebp,
            thread.wow64.stack_limit,
            thread.wow64.stack_base,
            eip_is_return=bool(stack.frames),
        )
        stack.frames, splice_note = splice_wow64(stack.frames, frames32)
        stack.stop_reason = stop32
        stack.note = "; ".join(n for n in (stack.note, note32, splice_note) if n) or None
    elif regs is not None and "eip" in regs and "esp" in regs and "rip" not in regs:
        stack.frames, stack.stop_reason, stack.note = walk_x86(
            ctx, regs["eip"], regs["esp"], regs.get("ebp", 0), thread.stack_limit, thread.stack_base,
            ceiling=ceiling,
        )
    if stack.stop_reason is None:
        # registers without an instruction and a stack pointer (a torn context): nothing to walk,
        # and the contract stays that every walk ends with a reason
        stack.stop_reason = StopReason.NO_CONTEXT
        stack.note = stack.note or "context has no instruction pointer and stack pointer"
    if len(stack.frames) > ctx.options.max_frames:
        # the WOW64 splice joins two walks that each honoured the limit; the joined stack must too
        del stack.frames[ctx.options.max_frames :]
        stack.stop_reason = StopReason.FRAME_LIMIT
    if thread.note and not stack.note:
        stack.note = thread.note


@dataclass(slots=True)
class Walk:
    frames: list[Frame]
    stop: StopReason
    note: str | None = None


@dataclass(slots=True)
class _Step:
    regs: Registers | None
    method: FoundBy = FoundBy.UNWOUND
    failure: str | None = None
    corrupt: bool = False  # the image's unwind data was there but unusable (UnwindError)
    trust: Trust = Trust.HIGH
    resume: int | None = None  # where a scan must start: above a return slot unwind data found
    consistent: bool | None = None  # a scanned frame: does its call lead to the frame above


def walk_registers(
    ctx: ProcessContext,
    registers: dict[str, int],
    stack_limit: int | None,
    stack_base: int | None,
    scan_ceiling: int | None = None,
) -> Walk:
    """Unwind from a 64-bit register state until the stack ends or a limit says stop.
    ``scan_ceiling``: scans stop below it (the exception dispatch frame of a crashed thread)."""
    opts = ctx.options
    cur = Registers({k: v for k, v in registers.items()})
    rip, rsp = cur.rip, cur.rsp
    if rip is None or rsp is None:
        return Walk([], StopReason.NO_CONTEXT, "context has no rip/rsp")
    frames = [make_frame(ctx, 0, rip, FoundBy.UNWOUND, False, rsp)]
    note = _bounds_note(rsp, stack_limit, stack_base)
    # Unwinding reads a few slots per frame (max_frames bounds it), whatever the frame sizes: a
    # real frame may well hold more than a megabyte. Scanning reads every slot it climbs, so the
    # scans of one thread share max_stack_bytes: each climbs at most what is left of it, however
    # far the (maybe hostile) TEB puts the stack base.
    top = stack_base if stack_base else rsp + opts.max_stack_bytes
    scan_top = min(top, scan_ceiling) if scan_ceiling else top
    budget = opts.max_stack_bytes
    seen = {(rip, rsp)}
    notes: list[str] = [note] if note else []
    while True:
        if len(frames) >= opts.max_frames:
            return Walk(frames, StopReason.FRAME_LIMIT, _join(notes))
        step = _unwind_step(ctx, cur, frame0=len(frames) == 1)
        # Corrupt unwind data (a hostile image) is said where it was met: on the frame the scan
        # found instead, or in the note when the scan finds nothing. Code that merely has no
        # unwind data (shellcode) is normal and only shows as a scanned frame.
        unusable = step.failure if step.corrupt else None
        if step.regs is None:
            if not opts.scan:
                return Walk(frames, StopReason.NO_RETURN_ADDRESS, _join(notes + [step.failure]))
            failure = step.failure
            step, used, cut = _scan_step(ctx, cur, step.resume, scan_top, budget, frames)
            budget -= used
            if step.regs is None:
                if cut or budget <= 0:
                    failure = f"{step.failure} (max_stack_bytes {opts.max_stack_bytes:#x} reached)"
                    return Walk(frames, StopReason.BYTE_LIMIT, _join(notes + [unusable, failure]))
                if scan_top < top:
                    why = "the scan stopped below the exception dispatch frame; the faulting frames are in the exception stack"
                    return Walk(frames, StopReason.EXCEPTION_FRAME, _join(notes + [unusable, failure, why]))
                return Walk(frames, StopReason.NO_RETURN_ADDRESS, _join(notes + [unusable, failure, step.failure]))
        new = step.regs
        stop = _check_progress(cur, new, stack_base, seen)
        if stop is not None:
            return Walk(frames, stop, _join(notes))
        assert new.rip is not None and new.rsp is not None
        seen.add((new.rip, new.rsp))
        frame = make_frame(ctx, len(frames), new.rip, step.method, True, new.rsp, trust=step.trust)
        if frame.call_verified is False and is_kernel_entry(ctx, frames[-1]):
            # below KiUserApcDispatcher & co. may lie the instruction the kernel interrupted to run
            # them (after a syscall, at a fault): no call precedes it, and none was expected to
            frame.call_verified = None
            frame.note = frame.note or f"where the kernel interrupted the thread to run {frames[-1].symbol_info}"
        frame.call_consistent = (step.consistent if step.method is FoundBy.SCANNED
                                 else call_leads_to(ctx, frame.call_target, frames[-1]))
        if unusable and frame.note is None:
            frame.note = f"found by scan: {unusable}"
        frames.append(frame)
        cur = new
        if stack_base and new.rsp >= stack_base:
            return Walk(frames, StopReason.END_OF_STACK, _join(notes))


def _join(notes: list[str | None]) -> str | None:
    kept = [n for n in notes if n]
    return "; ".join(kept) if kept else None


def _bounds_note(rsp: int, limit: int | None, base: int | None) -> str | None:
    if base is None:
        return "stack bounds unknown"
    if not (limit or 0) - 0x1000 <= rsp <= base:
        return f"rsp {rsp:#x} outside the TEB's stack bounds [{limit or 0:#x}, {base:#x}]"
    return None


def _check_progress(
    cur: Registers, new: Registers, stack_base: int | None, seen: set[tuple[int, int]]
) -> StopReason | None:
    if not new.rip:
        return StopReason.END_OF_STACK
    assert new.rsp is not None and cur.rsp is not None
    if new.rsp <= cur.rsp:
        return StopReason.NOT_INCREASING
    if stack_base and new.rsp > stack_base:
        return StopReason.LEFT_STACK
    if (new.rip, new.rsp) in seen:
        return StopReason.CYCLE
    return None


def _unwind_step(ctx: ProcessContext, cur: Registers, frame0: bool) -> _Step:
    """Unwind one frame from unwind data; an epilog or leaf rule where a module has none."""
    rip = cur.rip
    assert rip is not None
    lookup = rip if frame0 else rip - 1
    module = ctx.module(lookup)
    image = ctx.image_of(module)
    reader = StackReader(ctx.cache.read, ctx.cache.qword)
    if module is not None and image is not None and image.is_64 and image.has_unwind_data:
        function = image.function_at(lookup - module.base)
        try:
            new = virtual_unwind(image, module.base, function, cur, reader, in_prolog_possible=frame0)
        except UnwindError as exc:
            return _Step(None, failure=f"unwind failed at {rip:#x}: {exc}", corrupt=True)
        except MemoryMissing as exc:
            return _Step(None, failure=f"unwind failed at {rip:#x}: {exc}")
        if function is None:
            return _accept_leaf(ctx, new, rip)
        return _accept_unwound(ctx, new, rip)
    if frame0:
        found = _epilog_at_rip(ctx, cur, reader)
        if found is not None:
            return found
    try:
        new = leaf_unwind(cur, reader)
    except (UnwindError, MemoryMissing) as exc:
        return _Step(None, failure=f"stack unreadable at {cur.rsp:#x}: {exc}")
    return _accept_leaf(ctx, new, rip)


def _accept_unwound(ctx: ProcessContext, new: Registers, rip: int) -> _Step:
    """Unwind data located the return slot: its value is a frame unless the source rules it
    out (not mapped at all; or memory of unknown kind whose bytes show no call before it). Then
    the slot is no frame and a scan resumes above it, never inside the failed frame. A value in
    mapped memory that is not executable stays a frame: where a sleeping implant flipped its
    code to RW (Ekko, Foliage), that frame is the evidence, whatever its encrypted bytes show."""
    if not new.rip:
        return _Step(new)
    check = ctx.return_check(new.rip)
    unmapped = check.code is False and ctx.region(new.rip) is None
    if unmapped or (check.code is None and check.call.verified is False):
        return _Step(None, failure=f"unwind data at {rip:#x} gave a non-code return address {new.rip:#x}",
                     resume=new.rsp)
    return _Step(new, trust=check.located_trust)


def _epilog_at_rip(ctx: ProcessContext, cur: Registers, reader: StackReader) -> _Step | None:
    """Frame 0 without unwind data whose next instructions are an epilog ending in ``ret``
    (a syscall stub stopped after ``syscall``): the CPU's next steps are certain."""
    assert cur.rip is not None
    code = ctx.cache.trailing(cur.rip, 48)
    try:
        new = leaf_epilog(code, cur, reader) if code else None
    except MemoryMissing:
        return None
    if new is None or not new.rip:
        return None
    check = ctx.return_check(new.rip)
    return _Step(new, trust=check.located_trust) if check.possible else None


def _accept_leaf(ctx: ProcessContext, new: Registers, rip: int) -> _Step:
    """Without unwind data, [rsp] is the return address only for code that did not move
    the stack: trust it when it is code preceded by a call, else let the scan decide."""
    value = new.rip
    if value and ctx.return_check(value).proven:
        return _Step(new)
    return _Step(None, failure=f"no unwind data at {rip:#x}")


def _scan_step(
    ctx: ProcessContext, cur: Registers, resume: int | None, top: int, budget: int, frames: list[Frame]
) -> tuple[_Step, int, bool]:
    """The next return address in ``[start, top)`` by a validated scan (:func:`choose_return`),
    climbing at most ``budget`` bytes; also the bytes scanned and whether the budget (not the
    stack top) ended the range. ``start`` is ``resume`` (above a slot unwind data found but
    that held no return address) or the current RSP."""
    assert cur.rsp is not None and cur.rip is not None
    start = resume if resume is not None else cur.rsp
    stop = min(top, start + max(budget, 0))
    choice, used = choose_return(ctx, start, stop, frames)
    if choice is None:
        return _Step(None, failure=f"scan found no return address above {start:#x}"), used, stop < top
    new = cur.copy()
    new.set("rip", choice.hit.value)
    new.set("rsp", choice.hit.slot + 8)
    return _Step(new, FoundBy.SCANNED, trust=choice.trust, consistent=choice.consistent), used, False
