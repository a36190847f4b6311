"""Image mutations: how a smeared or tampered memory image differs from the one the forge wrote.

Each family aims at one kind of structure the plugins read, found through the forge's own
knowledge of where it put it (:class:`ForgedView`): user stacks, trap frames, TEBs, PE
headers, export tables, ``.pdata`` and UNWIND_INFO, VAD nodes (child pointers back to an
ancestor: a cycle), loader lists (cycles, self-loops), ActiveProcessLinks, thread lists,
page-table entries, and truncation. A mutation is only planned here, as byte patches of the
raw file (or a length to cut it to): planning is cheap and runs in the parent, so a case
that hangs a worker is still described, and case ``i`` of seed ``s`` is rebuilt from those
two numbers alone.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from typing import Callable

from callstack_forensics.forge.paging import ADDR_MASK, P
from callstack_forensics.forge.physmem import PAGE

from .image_view import PS, ForgedView, Patch, TableEntry
from .mutate import BOUNDARY_U32, FILL_BYTES

NONCANONICAL = 0x0000800000000000
KERNEL_JUNK = 0xFFFFF80000000000


@dataclass(frozen=True, slots=True)
class Mutation:
    """One corruption: its family, what it does (for the reproducer), and the bytes it puts."""

    family: str
    what: str
    patches: tuple[Patch, ...] = ()
    truncate: int | None = None  # cut the file to this many bytes

    def __str__(self) -> str:
        return f"{self.family}: {self.what}"


Family = Callable[[random.Random, ForgedView], "Mutation | None"]


# ---- values that hurt -------------------------------------------------------------------


def odd_pointer(rng: random.Random, own: int, near: list[int] = ()) -> int:  # type: ignore[assignment]
    """A pointer value a walker must survive: null, all-ones, non-canonical, an unmapped kernel or
    user address, itself (a self-loop), or another structure's address (a cycle), slightly off."""
    pick = rng.random()
    if pick < 0.3 and near:
        return rng.choice(near) + rng.choice((0, 0, 0, 8, -8, 1))
    if pick < 0.45:
        return own
    return rng.choice((0, 1, 0xFFFFFFFFFFFFFFFF, NONCANONICAL, NONCANONICAL + own % PAGE, KERNEL_JUNK + rng.getrandbits(30),
                       rng.getrandbits(47) & ~7, 0x1000, own ^ (1 << rng.randrange(48)), rng.getrandbits(64)))


def odd_u32(rng: random.Random) -> int:
    return rng.choice(BOUNDARY_U32) if rng.random() < 0.7 else rng.getrandbits(32)


def u64(value: int) -> bytes:
    return (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")


def u32(value: int) -> bytes:
    return (value & 0xFFFFFFFF).to_bytes(4, "little")


def junk(rng: random.Random, size: int) -> bytes:
    if rng.random() < 0.5:
        return bytes([rng.choice(FILL_BYTES)]) * size
    return rng.randbytes(size)


def _mutation(family: str, what: str, patches: list[Patch] | None) -> Mutation | None:
    return Mutation(family, what, tuple(patches)) if patches else None


# ---- user stacks, trap frames, TEBs -------------------------------------------------------


def stack(rng: random.Random, view: ForgedView) -> Mutation | None:
    """A page of a user stack between rsp and the stack base: smeared, zeroed, or its return
    addresses replaced by values pointing at the stack itself, the kernel, or nowhere."""
    threads = view.user_threads()
    if not threads:
        return None
    plan, thread = rng.choice(threads)
    rsp = thread.context.rsp  # type: ignore[union-attr]
    pages = list(range(rsp & ~(PAGE - 1), thread.stack_base, PAGE))
    if not pages:
        return None
    page = rng.choice(pages)
    data = view.read(plan.pid, page, PAGE)
    if data is None:
        return None
    buf = bytearray(data)
    style = rng.choice(("smear", "zero", "returns", "selfref"))
    if style == "smear":
        start = rng.randrange(0, PAGE)
        length = min(PAGE - start, rng.choice((8, 16, 64, 256, 1024, PAGE)))
        buf[start : start + length] = junk(rng, length)
    elif style == "zero":
        buf[:] = bytes(PAGE)
    else:
        returns = set(thread.return_addresses)
        slots = [o for o in range(0, PAGE, 8) if struct.unpack_from("<Q", buf, o)[0] in returns] or \
            [o for o in range(0, PAGE, 8)]
        for offset in rng.sample(slots, min(len(slots), rng.randint(1, 4))):
            value = page + offset if style == "selfref" else odd_pointer(rng, page + offset, [page, thread.stack_base])
            struct.pack_into("<Q", buf, offset, value & 0xFFFFFFFFFFFFFFFF)
    return _mutation("stack", f"pid {plan.pid} tid {thread.tid} stack page {page:#x}: {style}",
                     view.patches(plan.pid, page, bytes(buf)))


def trap_frame(rng: random.Random, view: ForgedView) -> Mutation | None:
    """A thread's trap frame registers, or the KTHREAD's pointer to it."""
    threads = view.user_threads()
    if not threads:
        return None
    plan, thread = rng.choice(threads)
    frame = view.trap_frame(plan.pid, thread.tid)
    if frame is None:
        return None
    if rng.random() < 0.25:
        offset, _ = view.field("_ETHREAD", "Tcb.TrapFrame")
        value = odd_pointer(rng, frame, [view.ethread(plan.pid, thread.tid), thread.teb or 0, frame + 0x1000])
        return _mutation("trap", f"pid {plan.pid} tid {thread.tid} KTHREAD.TrapFrame = {value:#x}",
                         view.patches(None, view.ethread(plan.pid, thread.tid) + offset, u64(value)))
    if rng.random() < 0.2:
        size = view.m.size("_KTRAP_FRAME")
        return _mutation("trap", f"pid {plan.pid} tid {thread.tid} trap frame smeared",
                         view.patches(None, frame, junk(rng, size)))
    register = rng.choice(("Rip", "Rsp", "Rbp"))
    offset, _ = view.field("_KTRAP_FRAME", register)
    own = thread.context.rsp if register != "Rip" else thread.context.rip  # type: ignore[union-attr]
    value = rng.choice((
        odd_pointer(rng, own, [thread.stack_base, thread.stack_limit, thread.teb or 0]),
        thread.stack_base + rng.choice((0, 8, 0x1000)), thread.stack_limit - rng.choice((8, 0x2000)),
        own + rng.choice((-8, 1, 8, 0x18)),
    ))
    return _mutation("trap", f"pid {plan.pid} tid {thread.tid} trap frame {register} = {value & (2**64 - 1):#x}",
                     view.patches(None, frame + offset, u64(value)))


def teb(rng: random.Random, view: ForgedView) -> Mutation | None:
    """A TEB's stack bounds (swapped, zero, wild), WOW64 pointers, the TEB smeared, or the
    KTHREAD's TEB pointer."""
    threads = view.user_threads()
    if not threads:
        return None
    plan, thread = rng.choice(threads)
    assert thread.teb is not None
    pick = rng.random()
    if pick < 0.2:
        offset, _ = view.field("_ETHREAD", "Tcb.Teb")
        value = odd_pointer(rng, thread.teb, [plan.peb, thread.stack_base - 0x1000])
        return _mutation("teb", f"pid {plan.pid} tid {thread.tid} KTHREAD.Teb = {value & (2**64 - 1):#x}",
                         view.patches(None, view.ethread(plan.pid, thread.tid) + offset, u64(value)))
    if pick < 0.35:
        size = view.m.size("_TEB")
        start = rng.randrange(0, min(size, 0x1800), 8)
        length = rng.choice((8, 64, 0x200))
        return _mutation("teb", f"pid {plan.pid} tid {thread.tid} TEB+{start:#x} smeared ({length} bytes)",
                         view.patches(plan.pid, thread.teb + start, junk(rng, length)))
    if pick < 0.5 and thread.wow64 is not None:
        name = rng.choice(("TlsSlots[1]", "NtTib.ExceptionList"))
        offset, _ = view.field("_TEB", name)
        value = odd_pointer(rng, thread.teb, [thread.wow64.teb32, thread.cpu_area or 0])
        return _mutation("teb", f"pid {plan.pid} tid {thread.tid} TEB.{name} = {value & (2**64 - 1):#x}",
                         view.patches(plan.pid, thread.teb + offset, u64(value)))
    base_offset, _ = view.field("_TEB", "NtTib.StackBase")
    limit_offset, _ = view.field("_TEB", "NtTib.StackLimit")
    base, limit = rng.choice((
        (thread.stack_limit, thread.stack_base), (0, 0), (thread.stack_base, 0), (0xFFFFFFFFFFFFFFFF, 0),
        (thread.stack_base + 0x10000000, thread.stack_limit), (thread.context.rsp, thread.context.rsp),  # type: ignore[union-attr]
        (odd_pointer(rng, thread.stack_base), odd_pointer(rng, thread.stack_limit)),
    ))
    patches = (view.patches(plan.pid, thread.teb + base_offset, u64(base)) or []) + \
        (view.patches(plan.pid, thread.teb + limit_offset, u64(limit)) or [])
    return _mutation("teb", f"pid {plan.pid} tid {thread.tid} TEB stack [{limit & (2**64 - 1):#x}, "
                     f"{base & (2**64 - 1):#x}]", patches)


# ---- PE images: headers, exports, .pdata and UNWIND_INFO -------------------------------------


def _pick_module(rng: random.Random, view: ForgedView):
    processes = [p for p in view.user_processes() if view.mapped_modules(p.pid)]
    if not processes:
        return None
    plan = rng.choice(processes)
    module = rng.choice(view.mapped_modules(plan.pid))
    layout = view.pe_layout(plan.pid, module)
    return (plan, module, layout) if layout is not None else None


def pe_header(rng: random.Random, view: ForgedView) -> Mutation | None:
    """MZ/PE signatures, e_lfanew, section count, optional-header sizes, data directories and
    section table entries of a mapped module (its pages are shared: every process sees it)."""
    picked = _pick_module(rng, view)
    if picked is None:
        return None
    plan, module, pe = picked
    name = module.path.rsplit("\\", 1)[-1]
    optional = pe.nt + 24
    targets = {
        "MZ": (pe.base, 2), "e_lfanew": (pe.base + 0x3C, 4), "PE signature": (pe.nt, 4),
        "NumberOfSections": (pe.nt + 6, 2), "SizeOfOptionalHeader": (pe.nt + 20, 2),
        "Magic": (optional, 2), "SizeOfImage": (optional + 56, 4), "SizeOfHeaders": (optional + 60, 4),
        "NumberOfRvaAndSizes": (pe.directories - 4, 4),
        "export directory": (pe.directories, 8), "exception directory": (pe.directories + 24, 8),
    }
    if pe.section_count:
        index = rng.randrange(pe.section_count)
        entry = pe.sections + 40 * index
        targets[f"section {index} VirtualSize"] = (entry + 8, 4)
        targets[f"section {index} VirtualAddress"] = (entry + 12, 4)
        targets[f"section {index} Characteristics"] = (entry + 36, 4)
        targets[f"section {index} header"] = (entry, 40)
    what, (va, size) = rng.choice(sorted(targets.items()))
    if size == 2:
        value = rng.choice((0, 1, 0xFFFF, 0x8000, 0x5A4D, 0x10B, 0x20B, rng.getrandbits(16)))
        data = value.to_bytes(2, "little")
    elif size == 4:
        data = u32(odd_u32(rng) if what != "PE signature" else rng.getrandbits(32))
    elif size == 8:
        data = u32(odd_u32(rng)) + u32(odd_u32(rng))
    else:
        data = junk(rng, size)
    return _mutation("pe", f"pid {plan.pid} {name} {what} = {data.hex()}", view.patches(plan.pid, va, data))


def exports(rng: random.Random, view: ForgedView) -> Mutation | None:
    """The export directory: huge counts, tables pointing outside the image or at themselves,
    function RVAs turned into forwarders (RVAs inside the directory) that point back at it."""
    picked = _pick_module(rng, view)
    if picked is None:
        return None
    plan, module, pe = picked
    rva, size = pe.export_dir
    if not rva or not size:
        return None
    directory = pe.base + rva
    name = module.path.rsplit("\\", 1)[-1]
    fields = {"NumberOfFunctions": 20, "NumberOfNames": 24, "AddressOfFunctions": 28, "AddressOfNames": 32,
              "AddressOfNameOrdinals": 36, "Name": 12, "Base": 16}
    if rng.random() < 0.6:
        what, offset = rng.choice(sorted(fields.items()))
        value = rng.choice((odd_u32(rng), rva, rva + size - 1, module.size, module.size - 4, 0x7FFFFFFF))
        return _mutation("exports", f"pid {plan.pid} {name} export {what} = {value:#x}",
                         view.patches(plan.pid, directory + offset, u32(value)))
    table = view.read(plan.pid, directory, 40)
    if table is None:
        return None
    count, _, functions = struct.unpack_from("<III", table, 20)
    if not count or not functions:
        return None
    index = rng.randrange(min(count, 4096))
    value = rng.choice((rva, rva + rng.randrange(max(size, 1)), odd_u32(rng), module.size + 0x1000))
    return _mutation("exports", f"pid {plan.pid} {name} export function {index} rva = {value:#x}",
                     view.patches(plan.pid, pe.base + functions + 4 * index, u32(value)))


def pdata(rng: random.Random, view: ForgedView) -> Mutation | None:
    """A RUNTIME_FUNCTION entry (range swapped or wild, unwind info outside the image or inside
    .pdata), or its UNWIND_INFO (version, flags, code count, codes, a chain pointing at itself)."""
    picked = _pick_module(rng, view)
    if picked is None:
        return None
    plan, module, pe = picked
    rva, size = pe.exception_dir
    if pe.bits != 64 or not rva or size < 12:
        return None
    name = module.path.rsplit("\\", 1)[-1]
    index = rng.randrange(size // 12)
    entry_va = pe.base + rva + 12 * index
    entry = view.read(plan.pid, entry_va, 12)
    if entry is None:
        return None
    begin, end, unwind = struct.unpack("<III", entry)
    if rng.random() < 0.45:
        values = rng.choice((
            (end, begin, unwind), (begin, begin, unwind), (begin, end, odd_u32(rng)), (begin, end, rva + 12 * index),
            (begin, end, unwind | 1), (odd_u32(rng), odd_u32(rng), unwind), (0, 0xFFFFFFFF, unwind),
            (begin, end, module.size - 2),
        ))
        return _mutation("pdata", f"pid {plan.pid} {name} RUNTIME_FUNCTION {index} = {[hex(v) for v in values]}",
                         view.patches(plan.pid, entry_va, struct.pack("<III", *values)))
    info_va = pe.base + (unwind & ~1)
    head = view.read(plan.pid, info_va, 4)
    if head is None:
        return None
    codes = head[2]
    style = rng.choice(("version", "chain-self", "codes", "count", "frame", "smear"))
    if style == "version":
        data = bytes([(head[0] & 0xF8) | rng.choice((0, 3, 5, 7))])
        offset = 0
    elif style == "chain-self":
        # UNW_FLAG_CHAININFO with the chained RUNTIME_FUNCTION naming this very UNWIND_INFO
        data = bytes([(head[0] & 0x07) | (0x4 << 3)])
        tail = 4 + 2 * ((codes + 1) & ~1)
        data_patch = view.patches(plan.pid, info_va + tail, struct.pack("<III", begin, end, unwind))
        patches = (view.patches(plan.pid, info_va, data) or []) + (data_patch or [])
        return _mutation("pdata", f"pid {plan.pid} {name} UNWIND_INFO at {unwind:#x} chains to itself", patches)
    elif style == "codes":
        data = bytes([0xFF])
        offset = 2
    elif style == "count":
        data = bytes([rng.choice((0, 1, 0x7F, 0xFF))])
        offset = 1
    elif style == "frame":
        data = bytes([rng.getrandbits(8)])
        offset = 3
    else:
        data = junk(rng, 4 + 2 * max(codes, 1))
        offset = 0
    return _mutation("pdata", f"pid {plan.pid} {name} UNWIND_INFO at {unwind:#x} {style} = {data.hex()}",
                     view.patches(plan.pid, info_va + offset, data))


# ---- VAD trees -----------------------------------------------------------------------------


def vad(rng: random.Random, view: ForgedView) -> Mutation | None:
    """A VAD node: a child pointer back to an ancestor or to itself (a cycle in the tree), a
    wild child, a swapped or wild range, flags, the file pointer; or the tree's root."""
    processes = [p for p in view.user_processes() if p.vads]
    if not processes:
        return None
    plan = rng.choice(processes)
    nodes = view.vad_nodes(plan.pid)
    if not nodes:
        return None
    by_va = {n.va: n for n in nodes}
    node = rng.choice(nodes)
    left_name, right_name, parent_name = view.vad_link_fields()
    pick = rng.random()
    if pick < 0.08:
        return deep_vad_chain(rng, view, plan.pid, node.va)
    if pick < 0.4:
        ancestors = []
        cur = node
        while cur.parent:
            ancestors.append(cur.parent)
            cur = by_va[cur.parent]
        target = rng.choice(ancestors + [node.va]) if rng.random() < 0.8 else odd_pointer(rng, node.va,
                                                                                       [n.va for n in nodes])
        side = rng.choice((left_name, right_name))
        offset, _ = view.field("_MMVAD_SHORT", side)
        kind = "ancestor" if target in ancestors else ("itself" if target == node.va else "elsewhere")
        return _mutation("vad", f"pid {plan.pid} VAD {node.va:#x} (depth {node.depth}) {side} -> {kind} {target:#x}",
                         view.patches(None, node.va + offset, u64(target)))
    if pick < 0.5:
        root_offset, _ = view.field("_EPROCESS", view.vad_root_field())
        target = odd_pointer(rng, view.eprocess(plan.pid), [n.va for n in nodes])
        return _mutation("vad", f"pid {plan.pid} VadRoot = {target & (2**64 - 1):#x}",
                         view.patches(None, view.eprocess(plan.pid) + root_offset, u64(target)))
    if pick < 0.6:
        offset, _ = view.field("_MMVAD_SHORT", parent_name)
        target = odd_pointer(rng, node.va, [n.va for n in nodes])
        return _mutation("vad", f"pid {plan.pid} VAD {node.va:#x} parent = {target & (2**64 - 1):#x}",
                         view.patches(None, node.va + offset, u64(target)))
    if pick < 0.8:
        start_offset, start_size = view.field("_MMVAD_SHORT", "StartingVpn")
        end_offset, _ = view.field("_MMVAD_SHORT", "EndingVpn")
        start = view.read(None, node.va + start_offset, start_size)
        end = view.read(None, node.va + end_offset, start_size)
        if start is None or end is None:
            return None
        choice = rng.choice(("swap", "wild-start", "wild-end", "empty", "huge"))
        new_start, new_end = {"swap": (end, start), "wild-start": (junk(rng, start_size), end),
                              "wild-end": (start, junk(rng, start_size)), "empty": (start, start),
                              "huge": (bytes(start_size), b"\xff" * start_size)}[choice]
        patches = (view.patches(None, node.va + start_offset, new_start) or []) + \
            (view.patches(None, node.va + end_offset, new_end) or [])
        return _mutation("vad", f"pid {plan.pid} VAD {node.va:#x} range {choice}", patches)
    if pick < 0.9 or not node.long:
        offset, size = view.field("_MMVAD_SHORT", "u.VadFlags")
        return _mutation("vad", f"pid {plan.pid} VAD {node.va:#x} flags smeared",
                         view.patches(None, node.va + offset, junk(rng, size)))
    offset, _ = view.field("_MMVAD", "Subsection")
    target = odd_pointer(rng, node.va, [n.va for n in nodes])
    return _mutation("vad", f"pid {plan.pid} VAD {node.va:#x} Subsection = {target & (2**64 - 1):#x}",
                     view.patches(None, node.va + offset, u64(target)))


DEEP_CHAIN = 120  # Volatility's VAD traversal gives up past depth 100
CHAIN_STRIDE = 24  # Left, Right, Parent; the next node's pool tag sits in this one's Right


def deep_vad_chain(rng: random.Random, view: ForgedView, pid: int, node: int) -> Mutation | None:
    """A crafted VAD "tree" deeper than any real one: a chain of 120 tagged nodes written into
    the unused part of a kernel stack page, hung below a real node (or as the root)."""
    tops = []
    base_offset, _ = view.field("_ETHREAD", "Tcb.StackBase")
    for plan, thread in view.all_threads():
        top = view.u64(None, view.ethread(plan.pid, thread.tid) + base_offset)
        if top and view.kernel_pa(top - PAGE) is not None:
            tops.append(top)
    if not tops:
        return None
    start = rng.choice(tops) - PAGE + 16
    left_name, _, _ = view.vad_link_fields()
    left, _ = view.field("_MMVAD_SHORT", left_name)
    chain = bytearray(16 + DEEP_CHAIN * CHAIN_STRIDE)
    tag = rng.choice((b"VadS", b"Vad ", b"VadF"))
    for k in range(DEEP_CHAIN):
        at = 16 + k * CHAIN_STRIDE
        nxt = start + (k + 1) * CHAIN_STRIDE if k + 1 < DEEP_CHAIN else 0
        struct.pack_into("<Q", chain, at + left, nxt)
        chain[at - 12 : at - 8] = tag  # the pool tag Volatility reads 12 bytes before a node
    patches = view.patches(None, start - 16, bytes(chain))
    if rng.random() < 0.5:
        root_offset, _ = view.field("_EPROCESS", view.vad_root_field())
        hook, where = view.eprocess(pid) + root_offset, "as the VadRoot"
    else:
        hook, where = node + left, f"below VAD {node:#x}"
    hooked = view.patches(None, hook, u64(start))
    if not patches or not hooked:
        return None
    return Mutation("vad", f"pid {pid} chain of {DEEP_CHAIN} {tag.decode()} nodes at {start:#x} {where}",
                    tuple(patches + hooked))


# ---- loader lists ----------------------------------------------------------------------------


def loader(rng: random.Random, view: ForgedView) -> Mutation | None:
    """InLoadOrderLinks: a Flink back to an earlier entry (a cycle that misses the head), to
    itself, or wild; an entry's base, size or names; the PEB's Ldr pointer."""
    processes = [p for p in view.user_processes() if view.ldr_entries(p.pid)]
    if not processes:
        return None
    plan = rng.choice(processes)
    entries = view.ldr_entries(plan.pid)
    index = rng.randrange(len(entries))
    entry = entries[index]
    pick = rng.random()
    link_offset, _ = view.field("_LDR_DATA_TABLE_ENTRY", "InLoadOrderLinks")
    if pick < 0.45:
        earlier = entries[rng.randrange(0, index + 1)]
        target = rng.choice((earlier + link_offset, entry + link_offset,
                             odd_pointer(rng, entry, entries)))
        kind = "itself" if target == entry + link_offset else ("earlier entry" if target in
                                                               [e + link_offset for e in entries] else "elsewhere")
        field = rng.choice(("Flink", "Blink")) if kind == "elsewhere" else "Flink"
        offset = link_offset + (0 if field == "Flink" else 8)
        return _mutation("ldr", f"pid {plan.pid} loader entry {index} InLoadOrderLinks.{field} -> {kind} "
                         f"{target & (2**64 - 1):#x}", view.patches(plan.pid, entry + offset, u64(target)))
    if pick < 0.75:
        name = rng.choice(("DllBase", "SizeOfImage", "FullDllName.Length", "FullDllName.Buffer",
                           "BaseDllName.Length", "BaseDllName.Buffer", "InMemoryOrderLinks.Flink"))
        offset, size = view.field("_LDR_DATA_TABLE_ENTRY", name)
        if size == 8:
            value = u64(odd_pointer(rng, entry, entries))
        elif size == 4:
            value = u32(rng.choice((0, 0xFFFFFFFF, 0x7FFFFFFF, 0x1000, rng.getrandbits(32))))
        else:
            value = rng.choice((0, 1, 0xFFFF, 0xFFFE, 0x7FFF, rng.getrandbits(16))).to_bytes(size, "little")
        return _mutation("ldr", f"pid {plan.pid} loader entry {index} {name} = {value.hex()}",
                         view.patches(plan.pid, entry + offset, value))
    if pick < 0.9:
        ldr = view.ldr_data(plan.pid) or 0
        head, _ = view.field("_PEB_LDR_DATA", "InLoadOrderModuleList")
        target = rng.choice((ldr + head, entry + link_offset, odd_pointer(rng, ldr, entries)))
        return _mutation("ldr", f"pid {plan.pid} InLoadOrderModuleList.Flink = {target & (2**64 - 1):#x}",
                         view.patches(plan.pid, ldr + head, u64(target)))
    offset, _ = view.field("_PEB", "Ldr")
    target = odd_pointer(rng, plan.peb, entries)
    return _mutation("ldr", f"pid {plan.pid} PEB.Ldr = {target & (2**64 - 1):#x}",
                     view.patches(plan.pid, plan.peb + offset, u64(target)))


# ---- kernel lists and objects ----------------------------------------------------------------


def process_links(rng: random.Random, view: ForgedView) -> Mutation | None:
    """ActiveProcessLinks (to itself, to an earlier process, wild), or the _EPROCESS fields the
    plugins read first: DirectoryTableBase, Peb, UniqueProcessId, the name, the object table."""
    plans = view.result.plans
    index = rng.randrange(len(plans))
    plan = plans[index]
    eprocess = view.eprocess(plan.pid)
    links = view.result.assembly.processes  # type: ignore[union-attr]
    link = links[plan.pid].active_links
    if rng.random() < 0.5:
        earlier = [links[p.pid].active_links for p in plans[: index + 1]]
        field = rng.choice(("Flink", "Flink", "Blink"))
        target = rng.choice((link, rng.choice(earlier), odd_pointer(rng, link, earlier)))
        offset = 0 if field == "Flink" else 8
        return _mutation("plist", f"pid {plan.pid} ActiveProcessLinks.{field} = {target & (2**64 - 1):#x}",
                         view.patches(None, link + offset, u64(target)))
    name = rng.choice(("Pcb.DirectoryTableBase", "Peb", "UniqueProcessId", "ImageFileName", "ObjectTable",
                       "Token", "InheritedFromUniqueProcessId", "ThreadListHead.Flink"))
    offset, size = view.field("_EPROCESS", name)
    if name == "Pcb.DirectoryTableBase":
        value = u64(rng.choice((0, 1, plan.dtb + 0x1000, plan.dtb | 0xFFF, view.image_size + 0x1000,
                                rng.choice(view.used_frames) * PAGE, 1 << 45)))
    elif name == "UniqueProcessId":
        value = u64(rng.choice((0, 4, plans[0].pid, plans[-1].pid, 0xFFFFFFFF, rng.getrandbits(64))))
    elif size == 8:
        value = u64(odd_pointer(rng, eprocess, [eprocess]))
    else:
        value = junk(rng, size)
    return _mutation("eprocess", f"pid {plan.pid} _EPROCESS.{name} = {value.hex()}",
                     view.patches(None, eprocess + offset, value))


def thread_links(rng: random.Random, view: ForgedView) -> Mutation | None:
    """ETHREAD.ThreadListEntry / KTHREAD.ThreadListEntry (self-loop, back to an earlier thread,
    wild), or a thread's Cid, state or start address."""
    processes = [p for p in view.result.plans if p.threads]
    plan = rng.choice(processes)
    index = rng.randrange(len(plan.threads))
    thread = plan.threads[index]
    ethread = view.ethread(plan.pid, thread.tid)
    if rng.random() < 0.6:
        name = rng.choice(("ThreadListEntry", "ThreadListEntry", "Tcb.ThreadListEntry"))
        offset, _ = view.field("_ETHREAD", name)
        earlier = [view.ethread(plan.pid, t.tid) + offset for t in plan.threads[: index + 1]]
        target = rng.choice((ethread + offset, rng.choice(earlier), odd_pointer(rng, ethread + offset, earlier)))
        field = rng.choice(("Flink", "Flink", "Blink"))
        return _mutation("tlist", f"pid {plan.pid} tid {thread.tid} {name}.{field} = {target & (2**64 - 1):#x}",
                         view.patches(None, ethread + offset + (0 if field == "Flink" else 8), u64(target)))
    name = rng.choice(("Cid.UniqueThread", "Cid.UniqueProcess", "Tcb.State", "Tcb.WaitReason", "StartAddress",
                       "Win32StartAddress", "Tcb.Process", "Tcb.StackBase"))
    offset, size = view.field("_ETHREAD", name)
    value = u64(odd_pointer(rng, ethread))[:size] if size == 8 else junk(rng, size)
    return _mutation("ethread", f"pid {plan.pid} tid {thread.tid} _ETHREAD.{name} = {value.hex()}",
                     view.patches(None, ethread + offset, value))


# ---- objects at the edge of mapped memory ----------------------------------------------------


def edge(rng: random.Random, view: ForgedView) -> Mutation | None:
    """A list link or tree pointer aimed at an object whose first bytes are mapped and whose
    later fields are not (it starts just below an unmapped page): the list walker checks the
    object's start, yields it, and the next read of it fails. Process list, thread list,
    loader list, VAD root."""
    kind = rng.choice(("plist", "tlist", "ldr", "vadroot"))
    plans = [p for p in view.result.plans if p.threads]
    plan = rng.choice(plans if kind in ("plist", "tlist") else view.user_processes() or plans)
    if kind == "ldr":
        entries = view.ldr_entries(plan.pid)
        edges = view.edges(plan.pid)
        if not entries or not edges:
            return None
        size = view.m.size("_LDR_DATA_TABLE_ENTRY")
        link_offset, _ = view.field("_LDR_DATA_TABLE_ENTRY", "InLoadOrderLinks")
        top = rng.choice(edges)
        target = top - rng.randrange(8, size, 8)
        index = rng.randrange(len(entries))
        return _mutation("edge", f"pid {plan.pid} loader entry {index} Flink -> entry at {target:#x}, "
                         f"{top - target:#x} bytes below unmapped memory",
                         view.patches(plan.pid, entries[index] + link_offset, u64(target + link_offset)))
    edges = view.edges(None)
    if not edges:
        return None
    top = rng.choice(edges)
    if kind == "plist":
        size = view.m.size("_EPROCESS")
        offset, _ = view.field("_EPROCESS", "ActiveProcessLinks")
        target = top - rng.randrange(8, size, 8)
        link = view.result.assembly.processes[plan.pid].active_links  # type: ignore[union-attr]
        return _mutation("edge", f"pid {plan.pid} ActiveProcessLinks.Flink -> EPROCESS at {target:#x}, "
                         f"{top - target:#x} bytes below unmapped memory",
                         view.patches(None, link, u64(target + offset)))
    if kind == "tlist":
        size = view.m.size("_ETHREAD")
        offset, _ = view.field("_ETHREAD", "ThreadListEntry")
        target = top - rng.randrange(8, size, 8)
        thread = rng.choice(plan.threads)
        return _mutation("edge", f"pid {plan.pid} tid {thread.tid} ThreadListEntry.Flink -> ETHREAD at {target:#x}, "
                         f"{top - target:#x} bytes below unmapped memory",
                         view.patches(None, view.ethread(plan.pid, thread.tid) + offset, u64(target + offset)))
    root_offset, _ = view.field("_EPROCESS", view.vad_root_field())
    target = top - rng.randrange(8, view.m.size("_MMVAD"), 8)
    return _mutation("edge", f"pid {plan.pid} VadRoot -> node at {target:#x}, {top - target:#x} bytes below "
                     "unmapped memory", view.patches(None, view.eprocess(plan.pid) + root_offset, u64(target)))


# ---- page tables -----------------------------------------------------------------------------


# Kernel objects straddle pages: a page of one that is gone while the start is there is what a
# reader that checked only the object's first byte trips on.
ETHREAD_FIELDS = ("Cid", "Tcb.Teb", "Tcb.TrapFrame", "ThreadListEntry", "Tcb.State", "StartAddress")
EPROCESS_FIELDS = ("Peb", "VadRoot", "ThreadListHead", "UniqueProcessId", "ImageFileName", "ObjectTable")


def _inside(rng: random.Random, view: ForgedView, type_name: str, fields: tuple[str, ...]) -> int:
    """An offset into a kernel object: its start, its last byte, or one of the fields the plugins read."""
    pick = rng.choice(("start", "end") + fields)
    if pick == "start":
        return 0
    if pick == "end":
        return view.m.size(type_name) - 1
    return view.field(type_name, pick)[0]


def page_tables(rng: random.Random, view: ForgedView) -> Mutation | None:
    """A page-table entry on the way to something the plugins read (a stack, TEB, PEB, loader
    entry, module header, or a kernel object): not present, pointing at another frame, at a
    page table (a loop), past the image's end, a large page, or a software PTE."""
    plans = view.user_processes()
    if not plans:
        return None
    plan = rng.choice(plans)
    candidates: list[tuple[str, int | None, int]] = [("PEB", plan.pid, plan.peb)]
    for thread in plan.threads:
        if thread.teb:
            candidates.append((f"tid {thread.tid} TEB", plan.pid, thread.teb))
        if thread.context is not None:
            candidates.append((f"tid {thread.tid} stack", plan.pid, thread.context.rsp))
        candidates.append((f"tid {thread.tid} ETHREAD", None,
                           view.ethread(plan.pid, thread.tid) + _inside(rng, view, "_ETHREAD", ETHREAD_FIELDS)))
    candidates += [(f"loader entry {i}", plan.pid, e) for i, e in enumerate(view.ldr_entries(plan.pid)[:4])]
    candidates += [(f"module {m.path.rsplit(chr(92), 1)[-1]}", plan.pid, m.base) for m in plan.modules[:4]]
    candidates.append(("EPROCESS", None, view.eprocess(plan.pid) + _inside(rng, view, "_EPROCESS", EPROCESS_FIELDS)))
    what, pid, va = rng.choice(candidates)
    dtb = plan.dtb if pid is not None else view.plans[view.result.plans[0].pid].dtb
    walk = view.walk(dtb, va)
    if not walk:
        return None
    # user structures: any level; kernel objects: the leaf only (upper kernel levels are shared)
    entry: TableEntry = rng.choice(walk if pid is not None else walk[-1:])
    value = entry.value
    frames = view.used_frames
    choice = rng.choice(("not-present", "other-frame", "table-loop", "past-end", "large", "software", "zero"))
    if choice == "not-present":
        new = value & ~P
    elif choice == "other-frame":
        new = (value & ~ADDR_MASK) | (rng.choice(frames) * PAGE)
    elif choice == "table-loop":
        new = (value & ~ADDR_MASK) | (entry.slot & ADDR_MASK)
    elif choice == "past-end":
        new = (value & ~ADDR_MASK) | ((view.image_size + rng.choice((0, 0x1000, 1 << 30, 1 << 40))) & ADDR_MASK)
    elif choice == "large":
        new = value | PS
    elif choice == "software":
        # transition (0x800), prototype (0x400) or page-file PTEs, the present bit clear
        new = rng.choice((((value & ADDR_MASK) | 0x800), (rng.getrandbits(32) << 32) | 0x400, (value & ~P) | 0x80,
                          (rng.getrandbits(32) << 32) | (4 << 5)))
    else:
        new = 0
    new &= 0xFFFFFFFFFFFFFFFF
    return _mutation("pte", f"pid {plan.pid} {what} {va:#x}: level-{entry.level} entry {value:#x} -> {new:#x} "
                     f"({choice})", [Patch(entry.slot, u64(new))])


# ---- whole-image damage ----------------------------------------------------------------------


def truncation(rng: random.Random, view: ForgedView) -> Mutation | None:
    """The file cut short: at a page boundary or mid-page, anywhere from the first page to the
    last used frame (a capture that stopped early, a copy that did not finish)."""
    top = (view.used_frames[-1] + 1) * PAGE
    pick = rng.random()
    if pick < 0.15:
        length = rng.randrange(0, 0x200000)
    elif pick < 0.6:
        length = rng.randrange(0, top, PAGE)
    else:
        length = rng.randrange(0, top)
    return Mutation("truncate", f"file cut to {length:#x} of {view.image_size:#x} bytes", (), length)


def smear(rng: random.Random, view: ForgedView) -> Mutation | None:
    """A run of junk over a random used frame (page tables, pool, user pages alike)."""
    frame = rng.choice(view.used_frames)
    start = rng.randrange(0, PAGE)
    length = min(PAGE - start, rng.choice((8, 64, 512, PAGE)))
    return Mutation("smear", f"frame {frame:#x}+{start:#x}: {length} bytes", (Patch(frame * PAGE + start,
                                                                                    junk(rng, length)),))


FAMILIES: dict[str, tuple[int, Family]] = {
    "stack": (12, stack), "trap": (8, trap_frame), "teb": (8, teb), "pe": (10, pe_header), "exports": (6, exports),
    "pdata": (10, pdata), "vad": (12, vad), "ldr": (10, loader), "plist": (6, process_links),
    "tlist": (8, thread_links), "edge": (6, edge), "pte": (10, page_tables), "truncate": (4, truncation), "smear": (4, smear),
}


def plan_mutations(rng: random.Random, view: ForgedView, count: int) -> list[Mutation]:
    """``count`` mutations of ``view``'s image (a truncation, if drawn, always last)."""
    names = list(FAMILIES)
    weights = [FAMILIES[n][0] for n in names]
    out: list[Mutation] = []
    attempts = 0
    while len(out) < count and attempts < count * 20:
        attempts += 1
        name = rng.choices(names, weights)[0]
        if name == "truncate" and any(m.truncate is not None for m in out):
            continue
        mutation = FAMILIES[name][1](rng, view)
        if mutation is not None:
            out.append(mutation)
    return sorted(out, key=lambda m: m.truncate is not None)
