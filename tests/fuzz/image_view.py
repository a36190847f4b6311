"""Where things are in a forged image, by physical address: what the image mutations aim at.

The forge keeps the memory it built (``ForgeResult.machine``: the physical frames and every
page table) and the plans (each process's DTB, PEB, modules, VADs; each thread's TEB, stack
and context). This view turns those into file offsets of a raw image (a raw image's file
offset is the physical address), and reads the structures the forge wrote back, the way a
kernel would walk them: VAD trees, loader lists, page-table entries. Nothing here mutates.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from callstack_forensics.forge import ForgeResult
from callstack_forensics.forge.machine import Machine
from callstack_forensics.forge.paging import ADDR_MASK, SELF_REF_INDEX, AddressSpace, P
from callstack_forensics.forge.physmem import PAGE
from callstack_forensics.forge.plan import LoadedModule, ProcessPlan, ThreadPlan

PS = 0x80  # the large-page bit of a PDE / PDPTE


@dataclass(frozen=True, slots=True)
class Patch:
    """Bytes to put at a file offset of the raw image (= a physical address)."""

    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class TableEntry:
    """One step of a virtual address's translation: the level, where the entry is, its value."""

    level: int  # 4 = PML4E ... 1 = PTE
    slot: int   # physical address of the entry
    value: int


@dataclass(frozen=True, slots=True)
class VadNode:
    va: int
    parent: int  # 0 for the root
    depth: int
    long: bool   # an _MMVAD (image or mapped file) rather than an _MMVAD_SHORT


@dataclass(frozen=True, slots=True)
class PeLayout:
    """Where a mapped PE's headers and tables sit (virtual addresses in its process)."""

    base: int
    bits: int
    nt: int                  # the NT headers ("PE\\0\\0")
    sections: int            # the first IMAGE_SECTION_HEADER
    section_count: int
    directories: int         # DataDirectory[0]
    export_dir: tuple[int, int]     # (rva, size)
    exception_dir: tuple[int, int]  # (rva, size): .pdata


class ForgedView:
    """A forged image's structures as physical addresses, for one :class:`ForgeResult`."""

    def __init__(self, result: ForgeResult) -> None:
        if result.machine is None or result.assembly is None:
            raise ValueError("the forge result no longer holds its memory (machine dropped)")
        self.result = result
        self.m: Machine = result.machine
        self.plans = {p.pid: p for p in result.plans}

    # ---- layouts ---------------------------------------------------------------------

    def field(self, type_name: str, path: str) -> tuple[int, int]:
        """(offset, size) of a field, from the image's own symbol table."""
        ref = self.m.table_for(type_name).field(type_name, path)
        return ref.offset, ref.size

    def has(self, type_name: str, path: str) -> bool:
        return self.m.has_field(type_name, path)

    # ---- translation -----------------------------------------------------------------

    def space(self, pid: int) -> AddressSpace:
        plan = self.plans[pid]
        if plan.kernel_only:
            return self.m.system_space
        return AddressSpace.attach(self.m.phys, self.m.kernel_half, plan.dtb)

    def kernel_pa(self, va: int) -> int | None:
        return self.m.system_space.translate(va)

    def user_pa(self, pid: int, va: int) -> int | None:
        try:
            return self.space(pid).translate(va)
        except ValueError:  # the page-table self-map
            return None

    def patches(self, pid: int | None, va: int, data: bytes) -> list[Patch] | None:
        """``data`` at ``va`` (kernel when ``pid`` is None), split at page boundaries; None if
        any page of the range is not present."""
        out = []
        pos = 0
        while pos < len(data):
            here = va + pos
            take = min(len(data) - pos, PAGE - (here & (PAGE - 1)))
            pa = self.kernel_pa(here) if pid is None else self.user_pa(pid, here)
            if pa is None:
                return None
            out.append(Patch(pa, data[pos : pos + take]))
            pos += take
        return out

    def u64(self, pid: int | None, va: int) -> int | None:
        pa = self.kernel_pa(va) if pid is None else self.user_pa(pid, va)
        if pa is None or (pa & (PAGE - 1)) > PAGE - 8:
            return None
        return self.m.phys.u64(pa)

    def read(self, pid: int | None, va: int, size: int) -> bytes | None:
        out = bytearray()
        while len(out) < size:
            here = va + len(out)
            pa = self.kernel_pa(here) if pid is None else self.user_pa(pid, here)
            if pa is None:
                return None
            take = min(size - len(out), PAGE - (here & (PAGE - 1)))
            out += self.m.phys.read(pa, take)
        return bytes(out)

    def walk(self, dtb: int, va: int) -> list[TableEntry]:
        """The page-table entries translating ``va`` under ``dtb``, top level first, as far as present."""
        indices = ((va >> 39) & 0x1FF, (va >> 30) & 0x1FF, (va >> 21) & 0x1FF, (va >> 12) & 0x1FF)
        if indices[0] == SELF_REF_INDEX:
            return []
        table = dtb & ADDR_MASK
        out = []
        for level, index in zip((4, 3, 2, 1), indices):
            slot = table + index * 8
            value = self.m.phys.u64(slot)
            out.append(TableEntry(level, slot, value))
            if not value & P:
                break
            table = value & ADDR_MASK
        return out

    @property
    def used_frames(self) -> list[int]:
        return sorted(self.m.phys.pages)

    @property
    def image_size(self) -> int:
        return self.result.image_size

    # ---- processes and threads -------------------------------------------------------

    def user_processes(self) -> list[ProcessPlan]:
        return [p for p in self.result.plans if not p.kernel_only]

    def eprocess(self, pid: int) -> int:
        return self.result.assembly.processes[pid].va  # type: ignore[union-attr]

    def ethread(self, pid: int, tid: int) -> int:
        return self.result.assembly.threads[(pid, tid)]  # type: ignore[union-attr]

    def all_threads(self) -> list[tuple[ProcessPlan, ThreadPlan]]:
        return [(p, t) for p in self.result.plans for t in p.threads]

    def user_threads(self) -> list[tuple[ProcessPlan, ThreadPlan]]:
        return [(p, t) for p, t in self.all_threads() if t.context is not None and t.teb]

    def trap_frame(self, pid: int, tid: int) -> int | None:
        offset, _ = self.field("_ETHREAD", "Tcb.TrapFrame")
        return self.u64(None, self.ethread(pid, tid) + offset) or None

    def edges(self, pid: int | None) -> list[int]:
        """Page-aligned addresses whose page is not mapped while the page below is: an object
        placed just below one has its start readable and its later fields gone. Kernel: the
        top of each thread's kernel stack (only its top page is mapped); user: stack bases,
        module ends, TEB and PEB ends."""
        if pid is None:
            offset, _ = self.field("_ETHREAD", "Tcb.StackBase")
            candidates = [self.u64(None, self.ethread(p.pid, t.tid) + offset) or 0 for p, t in self.all_threads()]
        else:
            plan = self.plans[pid]
            candidates = [t.stack_base for t in plan.threads if t.stack_base]
            candidates += [m.base + m.size for m in plan.modules]
            candidates += [(t.teb + PAGE) & ~(PAGE - 1) for t in plan.threads if t.teb]
            candidates += [plan.peb + PAGE * k for k in (1, 2, 3)] + [plan.arena[1]]
        out = []
        for va in candidates:
            va &= ~(PAGE - 1)
            if not va:
                continue
            below = self.kernel_pa(va - PAGE) if pid is None else self.user_pa(pid, va - PAGE)
            here = self.kernel_pa(va) if pid is None else self.user_pa(pid, va)
            if below is not None and here is None:
                out.append(va)
        return sorted(set(out))

    # ---- VAD trees -------------------------------------------------------------------

    def vad_link_fields(self) -> tuple[str, str, str]:
        if self.has("_MMVAD_SHORT", "VadNode.Left"):
            return "VadNode.Left", "VadNode.Right", "VadNode.ParentValue"
        return "LeftChild", "RightChild", "u1.Parent"

    def vad_root_field(self) -> str:
        return "VadRoot.Root" if self.has("_EPROCESS", "VadRoot.Root") else "VadRoot.BalancedRoot.RightChild"

    def vad_nodes(self, pid: int) -> list[VadNode]:
        """The process's VAD nodes, pre-order, as written (the forge builds a balanced tree)."""
        root_offset, _ = self.field("_EPROCESS", self.vad_root_field())
        root = self.u64(None, self.eprocess(pid) + root_offset) or 0
        left_name, right_name, _ = self.vad_link_fields()
        left, _ = self.field("_MMVAD_SHORT", left_name)
        right, _ = self.field("_MMVAD_SHORT", right_name)
        long_vas = self._long_vad_starts(pid)
        out: list[VadNode] = []
        todo = [(root, 0, 0)] if root else []
        while todo and len(out) < 4096:
            va, parent, depth = todo.pop()
            start = self._vad_start(va)
            out.append(VadNode(va, parent, depth, start in long_vas))
            for child_offset in (right, left):
                child = self.u64(None, va + child_offset) or 0
                if child:
                    todo.append((child, va, depth + 1))
        return out

    def _vad_start(self, node: int) -> int:
        low_offset, low_size = self.field("_MMVAD_SHORT", "StartingVpn")
        low = int.from_bytes(self.read(None, node + low_offset, low_size) or b"\0" * low_size, "little")
        high = 0
        if self.has("_MMVAD_SHORT", "StartingVpnHigh"):
            high_offset, high_size = self.field("_MMVAD_SHORT", "StartingVpnHigh")
            high = int.from_bytes(self.read(None, node + high_offset, high_size) or b"\0", "little")
        return ((high << 32) | low) << 12

    def _long_vad_starts(self, pid: int) -> set[int]:
        return {v.start for v in self.plans[pid].vads if v.kind != "private"}

    # ---- loader lists ----------------------------------------------------------------

    def ldr_data(self, pid: int) -> int | None:
        plan = self.plans[pid]
        if not plan.peb:
            return None
        offset, _ = self.field("_PEB", "Ldr")
        return self.u64(pid, plan.peb + offset)

    def ldr_entries(self, pid: int) -> list[int]:
        """The _LDR_DATA_TABLE_ENTRY addresses of InLoadOrderModuleList, in list order."""
        ldr = self.ldr_data(pid)
        if not ldr:
            return []
        head = ldr + self.field("_PEB_LDR_DATA", "InLoadOrderModuleList")[0]
        link_offset, _ = self.field("_LDR_DATA_TABLE_ENTRY", "InLoadOrderLinks")
        out = []
        cur = self.u64(pid, head)
        while cur and cur != head and len(out) < 512:
            out.append(cur - link_offset)
            cur = self.u64(pid, cur)
        return out

    # ---- PE images -------------------------------------------------------------------

    def mapped_modules(self, pid: int) -> list[LoadedModule]:
        plan = self.plans[pid]
        return [m for m in plan.modules + plan.modules32 if self.user_pa(pid, m.base) is not None]

    def pe_layout(self, pid: int, module: LoadedModule) -> PeLayout | None:
        """The headers of a mapped module as the forge mapped them (None when not a PE there)."""
        head = self.read(pid, module.base, PAGE)
        if head is None or head[:2] != b"MZ":
            return None
        (lfanew,) = struct.unpack_from("<I", head, 0x3C)
        if lfanew + 0x18 + 0x70 > PAGE or head[lfanew : lfanew + 4] != b"PE\0\0":
            return None
        file_header = lfanew + 4
        count, optional_size = struct.unpack_from("<H12xH", head, file_header + 2)
        optional = file_header + 20
        (magic,) = struct.unpack_from("<H", head, optional)
        bits = 64 if magic == 0x20B else 32
        directories = optional + (112 if bits == 64 else 96)
        export_dir = struct.unpack_from("<II", head, directories)
        exception_dir = struct.unpack_from("<II", head, directories + 3 * 8)
        return PeLayout(module.base, bits, module.base + lfanew, module.base + optional + optional_size, count,
                        module.base + directories, export_dir, exception_dir)
