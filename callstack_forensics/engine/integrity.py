"""A thread's stack verdict: clean, or the integrity failures its frames show.

What the live stack scanners check on a running host (Hunt-Sleeping-Beacons, Patriot, pe-sieve's
thread scan, Get-InjectedThreadEx, BeaconEye-style tracers), made from a snapshot. Each failure
names its check, the frames that show it and why. A check is made only on what the source holds:
a module whose bytes are missing, an unknown region, a walk cut by a missing page never raise one.

Checks:

* ``return_into_non_executable``: a return address in mapped memory that is not executable
  (a sleeping implant that flipped its code to RW: Ekko, Foliage, Cronos).
* ``call_gadget``: a return address right after a call through a register or memory that is
  itself followed by ``ret`` or ``jmp reg``: no compiler emits that, call-stack spoofers plant it
  to make a frame look like it belongs to a module.
* ``abnormal_intermodular_call``: an unwound frame whose call provably leads to another module
  than the frame above runs in (a spoofed or desynchronised stack).
* ``truncated``: the walk ended on a zero return address without reaching the thread's base
  (``RtlUserThreadStart``): ThreadStackSpoofer zeroes its own return address.
* ``start_not_on_stack``: the thread's start routine runs nowhere in its stack.
* ``suspicious_start``: the start address is ``LoadLibrary*`` (classic remote-thread DLL
  injection), a jump or call through a register, or inside a function rather than at its start.
* ``stack_pivot``: RSP outside the TEB's stack bounds, in other memory, and no fiber explains it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import re

from ..memory import RegionKind, ThreadInfo
from .consistency import function_start, resolver_for
from .context import ProcessContext
from .stack import FoundBy, Frame, StopReason, ThreadStack
from .system import system_module_name

# Where a thread's stack begins on Windows: its base frames (WOW64's 32-bit ones carry x86
# decorations, stripped before the comparison).
THREAD_BASES = frozenset({"rtluserthreadstart", "rtluserfiberstart", "ldrinitializethunk"})
LOAD_LIBRARY = frozenset({"LoadLibraryA", "LoadLibraryW", "LoadLibraryExA", "LoadLibraryExW"})
STACK_GUARD = 0x3000
_WOW64_STUB = re.compile(r"b8[0-9a-f]{8}ba[0-9a-f]{8}ffd2$")  # below StackLimit: the guard page and the page the next probe commits


@dataclass(frozen=True, slots=True)
class IntegrityFailure:
    check: str
    frames: tuple[int, ...]
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "frames": list(self.frames), "detail": self.detail}


def verdict(ctx: ProcessContext, stack: ThreadStack, thread: ThreadInfo) -> list[IntegrityFailure]:
    """Every integrity failure of ``stack`` (empty: clean)."""
    frames = stack.frames
    if not frames:
        return []
    out: list[IntegrityFailure] = []
    out += _non_executable_returns(frames)
    out += _call_gadgets(ctx, frames)
    out += _intermodular(ctx, frames)
    out += _truncated(stack)
    out += _start_checks(ctx, frames, thread)
    out += _pivot(ctx, thread)
    return out


def _non_executable_returns(frames: list[Frame]) -> list[IntegrityFailure]:
    out = []
    for frame in frames[1:]:
        if frame.is_32bit and frame.index == 0:
            continue
        base = frame.protection.split("|", 1)[0]
        if frame.region_kind == "unknown" or len(base) != 3 or base[2] == "X":
            continue
        out.append(IntegrityFailure("return_into_non_executable", (frame.index,),
                                    f"return address {frame.address:#x} lies in {frame.region_kind} memory "
                                    f"that is {base}, not executable"))
    return out


def _call_gadgets(ctx: ProcessContext, frames: list[Frame]) -> list[IntegrityFailure]:
    out = []
    for frame in frames[1:]:
        text = frame.call_instruction or ""
        if not text or text.split(" ", 1)[-1].startswith("0x") or "rip" in text:
            continue  # a direct call or one through the import table, or none seen
        if _wow64_stub(frame):
            continue  # Windows' own 32-bit system-call stub: `call edx; ret N` by design
        following = _first_instruction(ctx, frame.address, 32 if frame.is_32bit else 64)
        if following is not None and (following == "ret" or following.startswith("ret ") or _through_register(following)):
            out.append(IntegrityFailure("call_gadget", (frame.index,),
                                        f"'{text}' at {frame.address:#x} is followed by '{following}': a call gadget"))
    return out


def _wow64_stub(frame: Frame) -> bool:
    """A 32-bit system-call stub of a Windows module under WOW64 (``mov eax, N; mov edx,
    Wow64SystemServiceCall; call edx``, then ``ret N``)."""
    return frame.is_32bit and system_module_name(frame) is not None and \
        _WOW64_STUB.search(frame.callsite_leading_bytes) is not None


def _first_instruction(ctx: ProcessContext, address: int, bits: int) -> str | None:
    """The instruction at ``address``, decoded once per process (the same return addresses and
    start routines come back in thread after thread)."""
    key = (address, bits)
    if key not in ctx.first_instructions:
        code = ctx.cache.trailing(address, 16)
        ctx.first_instructions[key] = (None if not code else
                                       (ctx.decoder64 if bits == 64 else ctx.decoder32).first_instruction(code, address))
    return ctx.first_instructions[key]


def _intermodular(ctx: ProcessContext, frames: list[Frame]) -> list[IntegrityFailure]:
    out = []
    for above, frame in zip(frames, frames[1:]):
        if frame.method is not FoundBy.UNWOUND or frame.call_consistent is not False or frame.call_target is None:
            continue
        target = ctx.module(frame.call_target)
        callee = ctx.module(above.address if above.index == 0 else above.address - 1)
        reached, _complete = resolver_for(ctx, 32 if frame.is_32bit else 64).destinations(frame.call_target)
        reached_modules = {m.base for m in (ctx.module(a) for a in reached) if m is not None}
        if callee is None or callee.base in reached_modules or (target is not None and target.base == callee.base):
            continue
        out.append(IntegrityFailure(
            "abnormal_intermodular_call", (above.index, frame.index),
            f"the call before {frame.address:#x} ({frame.call_instruction}) leads to "
            f"{(target.name if target else 'no module')}, but the frame above runs in {callee.name}"))
    return out


def _truncated(stack: ThreadStack) -> list[IntegrityFailure]:
    if stack.stop_reason is not StopReason.END_OF_STACK:
        return []
    last = stack.frames[-1]
    if len(stack.frames) == 1 and last.index == 0:
        return []  # a thread stopped at its very first instruction has no caller yet
    if last.unbacked:
        return [IntegrityFailure("truncated", (last.index,),
                                 f"the walk ends on a zero return address in unbacked code at {last.address:#x}, "
                                 "without reaching the thread's base (RtlUserThreadStart)")]
    function = _function_name(last.symbol_info)
    if function is None or function in THREAD_BASES:
        return []  # what the last frame is cannot be told (no export names it), or it is the base
    return [IntegrityFailure("truncated", (last.index,),
                             f"the walk ends on a zero return address at {last.symbol_info}, "
                             "without reaching the thread's base (RtlUserThreadStart)")]


def _function_name(symbol_info: str) -> str | None:
    if "!" not in symbol_info:
        return None
    name = symbol_info.rsplit("!", 1)[1].split("+", 1)[0]
    return name.strip("_@").split("@", 1)[0].lower() or None


def _start_checks(ctx: ProcessContext, frames: list[Frame], thread: ThreadInfo) -> list[IntegrityFailure]:
    start = thread.win32_start_address or thread.start_address
    if not start:
        return []
    out = []
    module = ctx.module(start)
    image = ctx.image_of(module)
    name = None
    if module is not None and image is not None:
        export = image.export_at(start - module.base)
        name = export.name if export else None
    if name in LOAD_LIBRARY:
        out.append(IntegrityFailure("suspicious_start", (), f"the thread starts at {module.name}!{name}: a remote "
                                    "thread made to load a DLL (classic DLL injection)"))
        return out
    gadget = _first_instruction(ctx, start, 32 if any(f.is_32bit for f in frames) else 64)
    if gadget and module is not None and _through_register(gadget):
        out.append(IntegrityFailure("suspicious_start", (), f"the thread starts at {start:#x} in {module.name} on "
                                    f"'{gadget}': a gadget that hands control elsewhere"))
        return out
    begins = function_start(ctx, start, False)
    if image is not None and image.has_unwind_data and begins is not None and begins != start:
        out.append(IntegrityFailure("suspicious_start", (), f"the thread starts at {start:#x}, inside a function "
                                    f"of {module.name} that begins at {begins:#x}"))
    out += _start_not_on_stack(ctx, frames, start)
    return out


def _through_register(text: str) -> bool:
    """``jmp rax``, ``call qword ptr [rcx]``: a transfer whose target is in a register (not an
    immediate, not the import table)."""
    mnemonic, _, operand = text.partition(" ")
    return (mnemonic in ("jmp", "call") and bool(operand) and not operand.startswith("0x") and "rip" not in operand
            and ":" not in operand)  # fs:[0xc0]: Windows 7's WOW64 transition, not a register


def _start_not_on_stack(ctx: ProcessContext, frames: list[Frame], start: int) -> list[IntegrityFailure]:
    """The start routine must be running: some frame lies in its function (or, for unbacked code,
    in its region). Judged only when the function of the start and of every frame is known."""
    region = ctx.region(start)
    if ctx.module(start) is None:
        if region is None or region.kind is RegionKind.UNKNOWN:
            return []
        if any(region.contains(f.address) for f in frames):
            return []
        return [IntegrityFailure("start_not_on_stack", (), f"the start address {start:#x} is in unbacked memory no "
                                 "frame runs in")]
    begins = function_start(ctx, start, False)
    if begins is None:
        return []
    starts = []
    for frame in frames:
        found = function_start(ctx, frame.address, frame.index > 0)
        if found is None and ctx.module(frame.address) is None:
            return []  # an unbacked frame: the start routine may have been left for it
        starts.append(found)
    if begins in starts or None in starts:
        return []
    return [IntegrityFailure("start_not_on_stack", (), f"the start routine at {start:#x} runs in no frame of the stack")]


def _pivot(ctx: ProcessContext, thread: ThreadInfo) -> list[IntegrityFailure]:
    rsp = thread.rsp
    base, limit = thread.stack_base, thread.stack_limit
    if rsp is None or not base or limit is None:
        return []
    if limit - STACK_GUARD <= rsp <= base:
        return []
    if thread.fiber_stack is not None:
        fiber_base, fiber_limit = thread.fiber_stack
        if fiber_limit - STACK_GUARD <= rsp <= fiber_base:
            return []
    region = ctx.region(rsp)
    where = f"{region.kind.value} memory ({region.protection})" if region is not None else "memory no region holds"
    return [IntegrityFailure("stack_pivot", (0,), f"RSP {rsp:#x} is outside the TEB's stack [{limit:#x}, {base:#x}], "
                             f"in {where}, and no fiber explains it")]
