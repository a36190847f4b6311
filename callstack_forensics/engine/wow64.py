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
from .scan import scan_for_return
from .stack import FoundBy, Frame, StopReason

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
) -> tuple[list[Frame], StopReason, str | None]:
    """Walk a 32-bit stack. ``eip_is_return``: the WOW64 context's EIP is where the
    32-bit code called into the emulator, so it is checked like a return address."""
    opts = ctx.options
    top = stack_base if stack_base else esp + opts.max_stack_bytes
    # The scans of one thread share max_stack_bytes, as on x64: a hostile TEB can claim a stack
    # base gigabytes above ESP, and a scan climbing up to it page by page would never end.
    budget = opts.max_stack_bytes
    frames = [make_frame(ctx, 0, eip, FoundBy.UNWOUND, eip_is_return, esp, bits=32)]
    seen: set[int] = {eip}
    last_slot = esp - 4
    # A frameless leaf (a syscall stub, a thunk) leaves its caller's return address at [esp].
    first = ctx.cache.u32(esp)
    chain_first = ctx.cache.u32(ebp + 4) if ebp else None
    if first and first != chain_first and _is_return(ctx, first):
        frames.append(make_frame(ctx, 1, first, FoundBy.UNWOUND, True, esp + 4, bits=32))
        seen.add(first)
        last_slot = esp
    while len(frames) < opts.max_frames:
        if ebp and last_slot < ebp + 4 < top:
            ret = ctx.cache.u32(ebp + 4)
            nxt = ctx.cache.u32(ebp)
            if ret == 0:
                return frames, StopReason.END_OF_STACK, None
            if ret is not None and nxt is not None and _is_return(ctx, ret):
                if ret in seen and (nxt <= ebp):
                    return frames, StopReason.CYCLE, None
                frames.append(make_frame(ctx, len(frames), ret, FoundBy.UNWOUND, True, ebp + 8, bits=32))
                seen.add(ret)
                last_slot = ebp + 4
                if frames[-1].module is None and nxt > ebp:
                    # Code outside any module (shellcode) rarely keeps a frame pointer: its own
                    # return address sits between here and the next frame, unseen by the chain.
                    hit, used = scan_for_return(ctx, ebp + 8, min(nxt, top, ebp + 8 + max(budget, 0)), bits=32)
                    budget -= used
                    if hit is not None:
                        frames.append(make_frame(ctx, len(frames), hit.value, FoundBy.SCANNED, True, hit.slot + 4, bits=32))
                        seen.add(hit.value)
                        last_slot = hit.slot
                if nxt <= ebp:
                    if nxt == 0:
                        return frames, StopReason.END_OF_STACK, None
                    ebp = 0  # chain does not climb: fall back to scanning above this frame
                    continue
                ebp = nxt
                continue
        if not opts.scan:
            return frames, StopReason.NO_RETURN_ADDRESS, "EBP chain broken"
        stop = min(top, last_slot + 4 + max(budget, 0))
        hit, used = scan_for_return(ctx, last_slot + 4, stop, bits=32)
        budget -= used
        if hit is None:
            if stack_base and last_slot + 8 >= stack_base:
                return frames, StopReason.END_OF_STACK, None
            if stop < top or budget <= 0:
                return frames, StopReason.BYTE_LIMIT, \
                    f"EBP chain broken; scan found nothing more (max_stack_bytes {opts.max_stack_bytes:#x} reached)"
            return frames, StopReason.NO_RETURN_ADDRESS, "EBP chain broken; scan found nothing more"
        frames.append(make_frame(ctx, len(frames), hit.value, FoundBy.SCANNED, True, hit.slot + 4, bits=32))
        seen.add(hit.value)
        last_slot = hit.slot
        saved = ctx.cache.u32(hit.slot - 4)
        ebp = hit.slot - 4 if saved and saved > hit.slot else 0
    return frames, StopReason.FRAME_LIMIT, None


def _is_return(ctx: ProcessContext, value: int) -> bool:
    return value > 0x10000 and ctx.is_code(value) and ctx.call_before(value, 32) is not None


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
