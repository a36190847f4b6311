"""32-bit stacks (WOW64 threads and 32-bit processes) and their splice into the 64-bit one.

x86 code carries no unwind tables, so the walk follows the EBP chain
(``[ebp]`` = caller's EBP, ``[ebp+4]`` = return address), validating every
return address by its call site and scanning where the chain breaks (frame
pointer omitted, garbage EBP). For a WOW64 thread Elastic reports the 64-bit
frames down to the emulator (``ntdll|wow64|wow64cpu|wow64``) followed by the
32-bit frames, and drops the 64-bit frames that only set the emulation up.
"""

from __future__ import annotations

from .context import ProcessContext
from .decorate import make_frame
from .scan import ScanChoice, choose_return
from .stack import FoundBy, Frame, StopReason, Trust

MASK32 = 0xFFFFFFFF
WOW64_CPU_MODULES = ("wow64cpu.dll",)
WOW64_MODULES = ("wow64.dll",)


def walk_x86(
    ctx: ProcessContext,
    eip: int,
    esp: int,
    ebp: int,
    stack_limit: int | None,
    stack_base: int | None,
    eip_is_return: bool = False,
    ceiling: int | None = None,
) -> tuple[list[Frame], StopReason, str | None]:
    """Walk a 32-bit stack. ``eip_is_return``: the WOW64 context's EIP is where the
    32-bit code called into the emulator, so it is checked like a return address.
    ``ceiling``: scans stop below it (a crashed thread's exception dispatch frame)."""
    opts = ctx.options
    top = stack_base if stack_base else esp + opts.max_stack_bytes
    scan_top = min(top, ceiling) if ceiling else top
    # The scans of one thread share max_stack_bytes, as on x64: a hostile TEB can claim a stack
    # base gigabytes above ESP, and a scan climbing up to it page by page would never end.
    budget = opts.max_stack_bytes
    frames = [make_frame(ctx, 0, eip, FoundBy.UNWOUND, eip_is_return, esp, bits=32)]
    seen: set[int] = {eip}
    last_slot = esp - 4
    first = _caller_of_frame0(ctx, eip, esp, ebp, eip_is_return)
    if first is not None:
        value, slot, trust = first
        frames.append(make_frame(ctx, 1, value, FoundBy.UNWOUND, True, slot + 4, bits=32, trust=trust))
        seen.add(value)
        last_slot = slot
    while len(frames) < opts.max_frames:
        if ebp and last_slot < ebp + 4 < top:
            ret = ctx.cache.u32(ebp + 4)
            nxt = ctx.cache.u32(ebp)
            if ret == 0:
                return frames, StopReason.END_OF_STACK, None
            trust = _chain_trust(ctx, ret) if ret is not None and nxt is not None else None
            if trust is not None:
                if ret in seen and (nxt <= ebp):
                    return frames, StopReason.CYCLE, None
                frames.append(make_frame(ctx, len(frames), ret, FoundBy.UNWOUND, True, ebp + 8, bits=32, trust=trust))
                seen.add(ret)
                last_slot = ebp + 4
                if frames[-1].module is None and nxt > ebp:
                    # Code outside any module (shellcode) rarely keeps a frame pointer: its own
                    # return address sits between here and the next frame, unseen by the chain.
                    stop = min(nxt, scan_top, ebp + 8 + max(budget, 0))
                    choice, used = choose_return(ctx, ebp + 8, stop, frames, bits=32)
                    budget -= used
                    if choice is not None:
                        _append_scanned(ctx, frames, choice)
                        seen.add(choice.hit.value)
                        last_slot = choice.hit.slot
                if nxt <= ebp:
                    if nxt == 0:
                        return frames, StopReason.END_OF_STACK, None
                    ebp = 0  # chain does not climb: fall back to scanning above this frame
                    continue
                ebp = nxt
                continue
        if not opts.scan:
            return frames, StopReason.NO_RETURN_ADDRESS, "EBP chain broken"
        stop = min(scan_top, last_slot + 4 + max(budget, 0))
        choice, used = choose_return(ctx, last_slot + 4, stop, frames, bits=32)
        budget -= used
        if choice is None:
            if stack_base and last_slot + 8 >= stack_base:
                return frames, StopReason.END_OF_STACK, None
            if stop < scan_top or budget <= 0:
                return frames, StopReason.BYTE_LIMIT, \
                    f"EBP chain broken; scan found nothing more (max_stack_bytes {opts.max_stack_bytes:#x} reached)"
            if scan_top < top:
                return frames, StopReason.EXCEPTION_FRAME, ("EBP chain broken; the scan stopped below the exception "
                                                            "dispatch frame; the faulting frames are in the exception stack")
            return frames, StopReason.NO_RETURN_ADDRESS, "EBP chain broken; scan found nothing more"
        _append_scanned(ctx, frames, choice)
        seen.add(choice.hit.value)
        last_slot = choice.hit.slot
        saved = ctx.cache.u32(choice.hit.slot - 4)
        ebp = choice.hit.slot - 4 if saved and saved > choice.hit.slot else 0
    return frames, StopReason.FRAME_LIMIT, None


def _append_scanned(ctx: ProcessContext, frames: list[Frame], choice: ScanChoice) -> None:
    frame = make_frame(ctx, len(frames), choice.hit.value, FoundBy.SCANNED, True, choice.hit.slot + 4,
                       bits=32, trust=choice.trust)
    frame.call_consistent = choice.consistent
    frames.append(frame)


def _caller_of_frame0(
    ctx: ProcessContext, eip: int, esp: int, ebp: int, eip_is_return: bool
) -> tuple[int, int, Trust] | None:
    """The return address of frame 0 when it is not the EBP chain's first: (value, slot, trust).

    When the bytes at EIP are an epilog (``[add esp, N] [pop r32]* ret [N]``: a syscall stub
    stopped after its call into the kernel or the WOW64 layer) its return slot is certain.
    Otherwise a frameless leaf (a thunk) leaves its caller's return address at [esp], taken
    only when a call is seen before it."""
    chain_first = ctx.cache.u32(ebp + 4) if ebp else None
    if not eip_is_return:
        slot = _x86_epilog_return_slot(ctx.cache.trailing(eip, 16), esp)
        if slot is not None:
            value = ctx.cache.u32(slot)
            if value and value != chain_first:
                check = ctx.return_check(value, 32)
                if check.possible and (check.proven or _in_module(ctx, value)):
                    return value, slot, check.located_trust
            return None
    first = ctx.cache.u32(esp)
    if first and first != chain_first and ctx.return_check(first, 32).proven:
        return first, esp, Trust.HIGH
    return None


def _x86_epilog_return_slot(code: bytes, esp: int) -> int | None:
    """Where ``ret`` will read the return address if ``code`` is ``[add esp, N] [pop r32]* ret``."""
    i, slot = 0, esp
    if code[:2] == b"\x83\xc4" and len(code) > 2:  # add esp, imm8 (sign-extended: no negative)
        if code[2] >= 0x80:
            return None
        slot += code[2]
        i = 3
    elif code[:2] == b"\x81\xc4" and len(code) > 5:  # add esp, imm32
        slot += int.from_bytes(code[2:6], "little")
        i = 6
    while i < len(code) and 0x58 <= code[i] <= 0x5F and code[i] != 0x5C:  # pop r32 (not esp)
        slot += 4
        i += 1
    if i < len(code) and code[i] in (0xC3, 0xC2):
        return slot
    return None


def _chain_trust(ctx: ProcessContext, value: int) -> Trust | None:
    """May the EBP chain's ``value`` be a return address, and how sure is that? A verified
    call: high. No bytes to verify it but inside a module (a normal dump holds no module
    pages): medium, as LLDB walks such chains too. Anything else: no."""
    check = ctx.return_check(value, 32)
    if check.proven or (check.possible and check.call.verified is None and _in_module(ctx, value)):
        return check.located_trust
    return None


def _in_module(ctx: ProcessContext, value: int) -> bool:
    return ctx.module(value) is not None


def splice_wow64(frames64: list[Frame], frames32: list[Frame]) -> tuple[list[Frame], str | None]:
    """64-bit frames down to the emulator's last ``wow64.dll`` frame, then the 32-bit ones."""
    names = [f.module.name.lower() if f.module else "" for f in frames64]
    cpu = next((i for i, n in enumerate(names) if n in WOW64_CPU_MODULES), None)
    note = None
    if cpu is None:
        cut = len(frames64)
        if frames64:
            note = "64-bit stack does not reach wow64cpu.dll; 32-bit frames appended after it"
    else:
        cut = cpu
        while cut < len(names) and names[cut] in WOW64_CPU_MODULES:
            cut += 1
        while cut < len(names) and names[cut] in WOW64_MODULES:
            cut += 1
    out = list(frames64[:cut]) + list(frames32)
    for index, frame in enumerate(out):
        frame.index = index
    return out, note
