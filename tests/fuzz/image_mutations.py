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

from .image_kernel_mutations import deep_vad_chain, edge, page_tables, process_links, thread_links, vad
from .image_mutation_base import PAGE, Family, Mutation, junk
from .image_user_mutations import exports, loader, pdata, pe_header, stack, teb, trap_frame
from .image_view import ForgedView, Patch

__all__ = ["FAMILIES", "Mutation", "deep_vad_chain", "plan_mutations"]


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
