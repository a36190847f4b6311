"""Mutations of what a thread's walk reads in its own process: the user stack, the trap frame
that holds its registers, the TEB with its stack bounds, the loader list, and the mapped PE
images (headers, export tables, ``.pdata`` and UNWIND_INFO; their pages are shared, so every
process mapping the module sees the damage).
"""

from __future__ import annotations

import random
import struct

from .image_mutation_base import PAGE, Mutation, junk, mutation, odd_pointer, odd_u32, u32, u64
from .image_view import ForgedView


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
    return mutation("stack", f"pid {plan.pid} tid {thread.tid} stack page {page:#x}: {style}",
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
        return mutation("trap", f"pid {plan.pid} tid {thread.tid} KTHREAD.TrapFrame = {value:#x}",
                         view.patches(None, view.ethread(plan.pid, thread.tid) + offset, u64(value)))
    if rng.random() < 0.2:
        size = view.m.size("_KTRAP_FRAME")
        return mutation("trap", f"pid {plan.pid} tid {thread.tid} trap frame smeared",
                         view.patches(None, frame, junk(rng, size)))
    register = rng.choice(("Rip", "Rsp", "Rbp"))
    offset, _ = view.field("_KTRAP_FRAME", register)
    own = thread.context.rsp if register != "Rip" else thread.context.rip  # type: ignore[union-attr]
    value = rng.choice((
        odd_pointer(rng, own, [thread.stack_base, thread.stack_limit, thread.teb or 0]),
        thread.stack_base + rng.choice((0, 8, 0x1000)), thread.stack_limit - rng.choice((8, 0x2000)),
        own + rng.choice((-8, 1, 8, 0x18)),
    ))
    return mutation("trap", f"pid {plan.pid} tid {thread.tid} trap frame {register} = {value & (2**64 - 1):#x}",
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
        return mutation("teb", f"pid {plan.pid} tid {thread.tid} KTHREAD.Teb = {value & (2**64 - 1):#x}",
                         view.patches(None, view.ethread(plan.pid, thread.tid) + offset, u64(value)))
    if pick < 0.35:
        size = view.m.size("_TEB")
        start = rng.randrange(0, min(size, 0x1800), 8)
        length = rng.choice((8, 64, 0x200))
        return mutation("teb", f"pid {plan.pid} tid {thread.tid} TEB+{start:#x} smeared ({length} bytes)",
                         view.patches(plan.pid, thread.teb + start, junk(rng, length)))
    if pick < 0.5 and thread.wow64 is not None:
        name = rng.choice(("TlsSlots[1]", "NtTib.ExceptionList"))
        offset, _ = view.field("_TEB", name)
        value = odd_pointer(rng, thread.teb, [thread.wow64.teb32, thread.cpu_area or 0])
        return mutation("teb", f"pid {plan.pid} tid {thread.tid} TEB.{name} = {value & (2**64 - 1):#x}",
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
    return mutation("teb", f"pid {plan.pid} tid {thread.tid} TEB stack [{limit & (2**64 - 1):#x}, "
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
    return mutation("pe", f"pid {plan.pid} {name} {what} = {data.hex()}", view.patches(plan.pid, va, data))


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
        return mutation("exports", f"pid {plan.pid} {name} export {what} = {value:#x}",
                         view.patches(plan.pid, directory + offset, u32(value)))
    table = view.read(plan.pid, directory, 40)
    if table is None:
        return None
    count, _, functions = struct.unpack_from("<III", table, 20)
    if not count or not functions:
        return None
    index = rng.randrange(min(count, 4096))
    value = rng.choice((rva, rva + rng.randrange(max(size, 1)), odd_u32(rng), module.size + 0x1000))
    return mutation("exports", f"pid {plan.pid} {name} export function {index} rva = {value:#x}",
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
        return mutation("pdata", f"pid {plan.pid} {name} RUNTIME_FUNCTION {index} = {[hex(v) for v in values]}",
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
        return mutation("pdata", f"pid {plan.pid} {name} UNWIND_INFO at {unwind:#x} chains to itself", patches)
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
    return mutation("pdata", f"pid {plan.pid} {name} UNWIND_INFO at {unwind:#x} {style} = {data.hex()}",
                     view.patches(plan.pid, info_va + offset, data))


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
        return mutation("ldr", f"pid {plan.pid} loader entry {index} InLoadOrderLinks.{field} -> {kind} "
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
        return mutation("ldr", f"pid {plan.pid} loader entry {index} {name} = {value.hex()}",
                         view.patches(plan.pid, entry + offset, value))
    if pick < 0.9:
        ldr = view.ldr_data(plan.pid) or 0
        head, _ = view.field("_PEB_LDR_DATA", "InLoadOrderModuleList")
        target = rng.choice((ldr + head, entry + link_offset, odd_pointer(rng, ldr, entries)))
        return mutation("ldr", f"pid {plan.pid} InLoadOrderModuleList.Flink = {target & (2**64 - 1):#x}",
                         view.patches(plan.pid, ldr + head, u64(target)))
    offset, _ = view.field("_PEB", "Ldr")
    target = odd_pointer(rng, plan.peb, entries)
    return mutation("ldr", f"pid {plan.pid} PEB.Ldr = {target & (2**64 - 1):#x}",
                     view.patches(plan.pid, plan.peb + offset, u64(target)))
