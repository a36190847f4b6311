"""Does the call before a return address lead to the function of the frame above it?

A genuine return address follows a call, and that call went to the function the next frame
up is executing: directly (``call rel32``), through an import (``call [rip+x]`` reading the
IAT), or through a thunk or stub that only jumps on (``jmp [__imp_X]``, an incremental-link
``jmp rel32``, ``xor r8d, r8d; jmp WaitForSingleObjectEx``). A value left on the stack by an
earlier call (a stale return address) follows a call too, but to some other function. This
is how the scan tells the two apart, and what a spoofed stack gets wrong.

The answer is three-valued: True, False, or None when the source cannot tell (a call
through a register, a callee whose function bounds or bytes are not in the source).
"""

from __future__ import annotations

import capstone

from .context import ProcessContext
from .stack import Frame
from .symbols import export_for, root_function

MAX_HOPS = 4  # thunks followed from a call's target
# ntdll's entry points the kernel starts user-mode code at (a callback, an APC, an exception):
# the frame below one of them was interrupted in a system call or a fault, it did not call it,
# so no call leads to its function.
KERNEL_ENTRY_POINTS = frozenset({"KiUserCallbackDispatcher", "KiUserApcDispatcher", "KiUserExceptionDispatcher",
                                 "KiRaiseUserExceptionDispatcher", "KiUserInvertedFunctionTable"})
MAX_THUNK_INSNS = 3  # instructions a stub may run before its jump


class ThunkResolver:
    """Where a call's target leads through jump-only thunks; one per process and bitness."""

    def __init__(self, ctx: ProcessContext, bits: int) -> None:
        self._ctx = ctx
        self._bits = bits
        mode = capstone.CS_MODE_64 if bits == 64 else capstone.CS_MODE_32
        self._cs = capstone.Cs(capstone.CS_ARCH_X86, mode)
        self._cache: dict[int, tuple[frozenset[int], bool]] = {}

    def destinations(self, target: int) -> tuple[frozenset[int], bool]:
        """Every address the call reaches before real code runs (the target, then each hop),
        and whether the chain was followed to its end (False: a jump through a register or
        a pointer not in the source)."""
        found = self._cache.get(target)
        if found is None:
            found = self._follow(target)
            self._cache[target] = found
        return found

    def _follow(self, target: int) -> tuple[frozenset[int], bool]:
        reached = [target]
        for _ in range(MAX_HOPS):
            nxt, complete = self._jump_of(reached[-1])
            if nxt is None:
                return frozenset(reached), complete
            if nxt in reached:
                return frozenset(reached), True
            reached.append(nxt)
        return frozenset(reached), True

    def _jump_of(self, address: int) -> tuple[int | None, bool]:
        """The destination of the jump a stub at ``address`` ends in; (None, True) for real
        code, (None, False) when the bytes or the jump's pointer are not in the source."""
        code = self._ctx.cache.trailing(address, 32)
        if not code:
            return None, False
        for count, insn in enumerate(self._cs.disasm(code, address)):
            if insn.mnemonic == "jmp":
                return self._operand(insn)
            if count + 1 >= MAX_THUNK_INSNS or _is_branch(insn.mnemonic):
                return None, True
        return None, True

    def _operand(self, insn) -> tuple[int | None, bool]:
        op = insn.op_str
        if op.startswith("0x"):
            return int(op, 16), True
        slot = _memory_slot(op, insn.address + insn.size, self._bits)
        if slot is None:
            return None, False  # jmp reg, or a memory form we do not resolve
        read = self._ctx.cache.u64 if self._bits == 64 else self._ctx.cache.u32
        value = read(slot)
        return (value, True) if value else (None, False)


def _is_branch(mnemonic: str) -> bool:
    return mnemonic.startswith(("j", "call", "ret", "loop", "int", "syscall", "sysenter", "iret"))


def _memory_slot(op: str, next_address: int, bits: int) -> int | None:
    """The pointer slot of ``qword ptr [rip + 0x..]`` (64-bit) or ``dword ptr [0x..]`` (32-bit)."""
    if "[" not in op or ":" in op:
        return None
    inner = op[op.index("[") + 1 : op.index("]")].replace(" ", "")
    try:
        if bits == 64 and inner.startswith("rip"):
            rest = inner[3:]
            return next_address + (int(rest, 16) if rest else 0)
        if bits == 32 and inner.startswith("0x"):
            return int(inner, 16)
    except ValueError:
        return None
    return None


def resolver_for(ctx: ProcessContext, bits: int) -> ThunkResolver:
    """The process's resolver for ``bits``-bit code (kept on the context: thunks repeat)."""
    resolver = ctx.thunk_resolvers.get(bits)
    if resolver is None:
        resolver = ctx.thunk_resolvers[bits] = ThunkResolver(ctx, bits)
    return resolver


def is_kernel_entry(ctx: ProcessContext, frame: Frame) -> bool:
    """Is ``frame`` in one of ntdll's kernel entry points? The frame below one is the instruction
    the kernel interrupted (a system call, a fault), not a return address."""
    lookup = frame.address - 1 if frame.index else frame.address
    module = ctx.module(lookup)
    image = ctx.image_of(module)
    if module is None or image is None or module.name.lower() != "ntdll.dll":
        return False
    export = export_for(image, lookup - module.base)
    return export is not None and export.name in KERNEL_ENTRY_POINTS


def function_start(ctx: ProcessContext, address: int, is_return: bool) -> int | None:
    """Where the function at ``address`` begins (a return address is looked up one byte back,
    in its call): from ``.pdata`` (indirect and chained entries followed to the primary), or
    the export of a leaf stub no ``.pdata`` function covers; None when the module, its image
    or its unwind data is not in the source, and for ntdll's kernel entry points (nothing calls
    them: whatever lies below one was interrupted, in a system call or a fault)."""
    lookup = address - 1 if is_return else address
    starts = ctx.function_starts  # per process: the threads' frames share their return addresses
    if lookup not in starts:
        starts[lookup] = _function_start(ctx, lookup)
    return starts[lookup]


def _function_start(ctx: ProcessContext, lookup: int) -> int | None:
    module = ctx.module(lookup)
    image = ctx.image_of(module)
    if module is None or image is None or not image.has_unwind_data:
        return None
    rva = lookup - module.base
    export = export_for(image, rva)
    if export is not None and export.name in KERNEL_ENTRY_POINTS and module.name.lower() == "ntdll.dll":
        return None
    entry = image.function_at(rva)
    if entry is not None:
        return module.base + root_function(image, entry).begin
    return module.base + export.rva if export is not None else None


def call_leads_to(ctx: ProcessContext, target: int | None, callee: Frame, bits: int = 64) -> bool | None:
    """Does a call to ``target`` reach the function ``callee`` (the frame above) executes?
    None when either side cannot be determined from the source."""
    if target is None:
        return None
    start = function_start(ctx, callee.address, callee.call_verified is not None or callee.index > 0)
    if start is None:
        return None
    reached, complete = resolver_for(ctx, bits).destinations(target)
    if start in reached:
        return True
    return False if complete else None
