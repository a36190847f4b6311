"""Check 7: hardware breakpoints in a thread's saved user context (patchless AMSI/ETW bypasses).

A patchless bypass leaves the code intact and sets a debug register on the function to
skip (``AmsiScanBuffer``, ``NtTraceEvent``, ``EtwEventWrite``...) with Dr7 enabling it;
its vectored handler then fakes the function's result whenever the breakpoint fires. What
a capture keeps is the register state: Dr0-Dr3 and Dr7 in the thread's trap frame (saved
by the kernel only while the thread's ``DebugActive`` flag is set) or in a minidump's
CONTEXT. This module decodes Dr7 and names each enabled breakpoint's address; a source
that holds no debug registers gives no fields at all (nothing is concluded from absence).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...engine.context import ProcessContext
from ...memory import ThreadInfo
from ...memory.implantstate import DR7_GLOBAL_ENABLE, DR7_LOCAL_ENABLE, DebugRegisters
from .locate import Location, locate

CONDITIONS = ("execute", "write", "io", "read_write")  # Dr7 R/Wn: 00, 01, 10, 11
LENGTHS = (1, 2, 8, 4)  # Dr7 LENn: 00, 01, 10 (8 bytes, x64), 11


@dataclass(frozen=True, slots=True)
class HardwareBreakpoint:
    """One breakpoint Dr7 enables: which register, where, on what access, how wide."""

    register: str
    location: Location
    condition: str
    length: int
    scope: str  # "local", "global" or "local|global"

    @property
    def on_export(self) -> bool:
        """An execution breakpoint in a function a module exports (what a patchless hook needs)."""
        return self.condition == "execute" and self.location.export is not None

    def to_ecs(self) -> dict[str, Any]:
        out = {"register": self.register, "condition": self.condition, "length": self.length, "scope": self.scope}
        out.update(self.location.to_ecs())
        return out

    def describe(self) -> str:
        return f"{self.register} = {self.location.address:#x} ({self.location.symbol_info}) on {self.condition}"


def breakpoints(ctx: ProcessContext, registers: DebugRegisters) -> list[HardwareBreakpoint]:
    """The breakpoints Dr7 enables, each with its address named in this process."""
    out = []
    for index, address in enumerate(registers.addresses):
        if not registers.enabled(index):
            continue
        control = registers.dr7 >> (16 + 4 * index)
        scope = "|".join(name for name, bits in (("local", DR7_LOCAL_ENABLE), ("global", DR7_GLOBAL_ENABLE))
                         if registers.dr7 & bits[index])
        out.append(HardwareBreakpoint(f"dr{index}", locate(ctx, address), CONDITIONS[control & 3],
                                      LENGTHS[(control >> 2) & 3], scope))
    return out


def thread_fields(ctx: ProcessContext, thread: ThreadInfo) -> tuple[dict[str, Any], list[str]]:
    """``process.thread.Ext`` fields and evidence sentences for a thread's debug registers.

    ``hardware_breakpoint_set`` is Elastic's field (present only when true); our
    ``hardware_breakpoints`` lists each enabled one. No fields when the source holds no
    debug registers for the thread or none is enabled."""
    registers = thread.debug_registers
    if registers is None:
        return {}, []
    found = breakpoints(ctx, registers)
    if not found:
        return {}, []
    fields = {"hardware_breakpoint_set": True, "hardware_breakpoints": [b.to_ecs() for b in found]}
    detail = (f"debug registers from {registers.source}: Dr7 = {registers.dr7:#x} enables "
              + "; ".join(b.describe() for b in found))
    return fields, [detail]
