"""Mutations of the kernel's view of processes: VAD trees (cycles back to an ancestor, a chain
deeper than any tree), ActiveProcessLinks, thread lists, the objects' own fields, links aimed at
objects that begin just below unmapped memory, and the page-table entries on the way to all of
it (user and kernel).
"""

from __future__ import annotations

import random
import struct

from callstack_forensics.forge.paging import ADDR_MASK, P

from .image_mutation_base import PAGE, Mutation, junk, mutation, odd_pointer, u64
from .image_view import PS, ForgedView, Patch, TableEntry


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
        return mutation("vad", f"pid {plan.pid} VAD {node.va:#x} (depth {node.depth}) {side} -> {kind} {target:#x}",
                         view.patches(None, node.va + offset, u64(target)))
    if pick < 0.5:
        root_offset, _ = view.field("_EPROCESS", view.vad_root_field())
        target = odd_pointer(rng, view.eprocess(plan.pid), [n.va for n in nodes])
        return mutation("vad", f"pid {plan.pid} VadRoot = {target & (2**64 - 1):#x}",
                         view.patches(None, view.eprocess(plan.pid) + root_offset, u64(target)))
    if pick < 0.6:
        offset, _ = view.field("_MMVAD_SHORT", parent_name)
        target = odd_pointer(rng, node.va, [n.va for n in nodes])
        return mutation("vad", f"pid {plan.pid} VAD {node.va:#x} parent = {target & (2**64 - 1):#x}",
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
        return mutation("vad", f"pid {plan.pid} VAD {node.va:#x} range {choice}", patches)
    if pick < 0.9 or not node.long:
        offset, size = view.field("_MMVAD_SHORT", "u.VadFlags")
        return mutation("vad", f"pid {plan.pid} VAD {node.va:#x} flags smeared",
                         view.patches(None, node.va + offset, junk(rng, size)))
    offset, _ = view.field("_MMVAD", "Subsection")
    target = odd_pointer(rng, node.va, [n.va for n in nodes])
    return mutation("vad", f"pid {plan.pid} VAD {node.va:#x} Subsection = {target & (2**64 - 1):#x}",
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
        return mutation("plist", f"pid {plan.pid} ActiveProcessLinks.{field} = {target & (2**64 - 1):#x}",
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
    return mutation("eprocess", f"pid {plan.pid} _EPROCESS.{name} = {value.hex()}",
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
        return mutation("tlist", f"pid {plan.pid} tid {thread.tid} {name}.{field} = {target & (2**64 - 1):#x}",
                         view.patches(None, ethread + offset + (0 if field == "Flink" else 8), u64(target)))
    name = rng.choice(("Cid.UniqueThread", "Cid.UniqueProcess", "Tcb.State", "Tcb.WaitReason", "StartAddress",
                       "Win32StartAddress", "Tcb.Process", "Tcb.StackBase"))
    offset, size = view.field("_ETHREAD", name)
    value = u64(odd_pointer(rng, ethread))[:size] if size == 8 else junk(rng, size)
    return mutation("ethread", f"pid {plan.pid} tid {thread.tid} _ETHREAD.{name} = {value.hex()}",
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
        return mutation("edge", f"pid {plan.pid} loader entry {index} Flink -> entry at {target:#x}, "
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
        return mutation("edge", f"pid {plan.pid} ActiveProcessLinks.Flink -> EPROCESS at {target:#x}, "
                         f"{top - target:#x} bytes below unmapped memory",
                         view.patches(None, link, u64(target + offset)))
    if kind == "tlist":
        size = view.m.size("_ETHREAD")
        offset, _ = view.field("_ETHREAD", "ThreadListEntry")
        target = top - rng.randrange(8, size, 8)
        thread = rng.choice(plan.threads)
        return mutation("edge", f"pid {plan.pid} tid {thread.tid} ThreadListEntry.Flink -> ETHREAD at {target:#x}, "
                         f"{top - target:#x} bytes below unmapped memory",
                         view.patches(None, view.ethread(plan.pid, thread.tid) + offset, u64(target + offset)))
    root_offset, _ = view.field("_EPROCESS", view.vad_root_field())
    target = top - rng.randrange(8, view.m.size("_MMVAD"), 8)
    return mutation("edge", f"pid {plan.pid} VadRoot -> node at {target:#x}, {top - target:#x} bytes below "
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
    return mutation("pte", f"pid {plan.pid} {what} {va:#x}: level-{entry.level} entry {value:#x} -> {new:#x} "
                     f"({choice})", [Patch(entry.slot, u64(new))])
