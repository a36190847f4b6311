"""The stack engine's memory interface over a forged image as the forge built it (no Volatility).

Lets the tests hand a forged process to the stack engine directly: regions from the plan's VADs,
modules from its loader lists, threads with the trap-frame context and TEB bounds the forge wrote,
reads through the process's own page tables.
"""

from __future__ import annotations

from callstack_forensics.forge import ForgeResult
from callstack_forensics.forge.paging import AddressSpace, canonical
from callstack_forensics.forge.plan import ProcessPlan
from callstack_forensics.memory import (
    MemoryMissing, Module, ProcessInfo, ProcessMemory, Region, RegionKind, ThreadInfo, Wow64Context,
)

PROTECTION = {0: "---", 1: "R--", 2: "--X", 3: "R-X", 4: "RW-", 5: "RW-", 6: "RWX", 7: "RWX"}


class ForgedProcessMemory(ProcessMemory):
    def __init__(self, result: ForgeResult, plan: ProcessPlan) -> None:
        machine = result.machine
        assert machine is not None
        self.space = AddressSpace.attach(machine.phys, machine.kernel_half, plan.dtb)
        self.plan = plan
        self.process = ProcessInfo(plan.pid, plan.name, plan.image_path, plan.command_line, plan.ppid, plan.wow64,
                                   8)

    def read(self, address: int, size: int) -> bytes:
        out = bytearray()
        while len(out) < size:
            here = address + len(out)
            pa = self.space.translate(here)
            if pa is None:
                raise MemoryMissing(here)
            chunk = min(size - len(out), 0x1000 - (here & 0xFFF))
            out += self.space.phys.read(pa, chunk)
        return bytes(out)

    def regions(self) -> list[Region]:
        out = []
        for vad in sorted(self.plan.vads, key=lambda v: v.start):
            kind = {"private": RegionKind.PRIVATE, "mapped": RegionKind.MAPPED, "image": RegionKind.IMAGE}[vad.kind]
            path = ("C:" + vad.file_path) if vad.file_path else None
            out.append(Region(vad.start, vad.end + 1, PROTECTION[vad.protection], kind, path, vad.start))
        return out

    def modules(self) -> list[Module]:
        mods = {m.base: m for m in self.plan.modules + self.plan.modules32}
        return [Module(m.base, m.size, m.path, m.timestamp, None, m.linked) for m in sorted(mods.values(),
                                                                                              key=lambda m: m.base)]

    def threads(self) -> list[ThreadInfo]:
        out = []
        for thread in self.plan.threads:
            info = ThreadInfo(thread.tid, teb=thread.teb, stack_base=thread.stack_base or None,
                              stack_limit=thread.stack_limit or None, start_address=thread.start_address,
                              win32_start_address=thread.win32_start_address, state=thread.state,
                              wait_reason=thread.wait_reason, syscall_number=thread.syscall_number)
            if thread.context is not None:
                info.registers = {"rip": thread.context.rip, "rsp": thread.context.rsp, "rbp": thread.context.rbp,
                                  **thread.context.others}
            if thread.wow64 is not None:
                w = thread.wow64
                info.wow64 = Wow64Context(w.eip, w.esp, w.ebp, w.stack_base, w.stack_limit)
            out.append(info)
        return out


def canonical_address(value: int) -> int:
    return canonical(value)
