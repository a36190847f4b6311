"""A page translated from its page table alone (``leafwalk``) lands where Volatility's own walk
lands, and every case it does not answer is left to that walk.

Checked on a real Volatility Windows x64 layer over page tables written here with every kind of
entry Windows leaves (present, never used, in transition, prototype, in the page file, a 2 MiB
large page, a table of one repeated entry that Volatility refuses), and on the layers of a forged
image, at the addresses an analysis reads (kernel threads, stacks, TEBs, modules)."""

from __future__ import annotations

import random
import struct

from volatility3.framework import contexts, exceptions
from volatility3.framework.layers import intel, physical

from callstack_forensics.volatility.leafwalk import LeafWalk
from callstack_forensics.volatility.session import VolatilitySettings, open_image

PML4, PDPT, PD, PT, PT_REPEATED = 0x1000, 0x2000, 0x3000, 0x4000, 0x5000
PRESENT, PSE = 0x1, 0x80
TRANSITION, PROTOTYPE = 1 << 11, 1 << 10


def _tables() -> bytearray:
    """Page tables mapping three 2 MiB stretches: one through a page table of every kind of
    entry, one as a large page, one through a table Volatility refuses (one entry repeated)."""
    memory = bytearray(0x400000)
    rng = random.Random(3)

    def put(table: int, index: int, value: int) -> None:
        struct.pack_into("<Q", memory, table + index * 8, value)

    put(PML4, 0, PDPT | PRESENT)
    put(PML4, 0x1F0, PDPT | PRESENT)  # the same tables again at a canonical kernel address
    put(PDPT, 0, PD | PRESENT)
    put(PD, 0, PT | PRESENT)
    put(PD, 1, 0x200000 | PSE | PRESENT)
    put(PD, 2, PT_REPEATED | PRESENT)
    put(PD, 3, PT | TRANSITION)  # an upper entry not present: Volatility's transition rule
    for index in range(512):
        kind = rng.choice(["present", "present", "zero", "transition", "prototype", "pagefile"])
        frame = rng.randrange(0x10, 0x3FF) << 12
        value = {"present": frame | PRESENT | (rng.getrandbits(1) << 63), "zero": 0,
                 "transition": frame | TRANSITION, "prototype": frame | PROTOTYPE | TRANSITION,
                 "pagefile": (rng.randrange(1, 1 << 20) << 32) | 0x80 | (rng.randrange(16) << 1)}[kind]
        put(PT, index, value)
        put(PT_REPEATED, index, 0x9000 | PRESENT)
        put(0x200000, index, (rng.randrange(0x10, 0x3FF) << 12) | PRESENT)  # the large page's data reads
        # like a page table: a walk that missed the large-page bit would take it for one
    return memory


def _layer() -> intel.WindowsIntel32e:
    context = contexts.Context()
    context.add_layer(physical.BufferDataLayer(context, "base", "base", bytes(_tables())))
    context.config["virtual.memory_layer"] = "base"
    context.config["virtual.page_map_offset"] = PML4
    layer = intel.WindowsIntel32e(context, "virtual", "virtual")
    context.add_layer(layer)
    return layer


def _volatility(layer, address: int):
    try:
        return layer._translate(address)
    except exceptions.InvalidAddressException as exc:
        return type(exc).__name__


def test_every_kind_of_entry_translates_as_volatility_or_is_left_to_it():
    layer = _layer()
    walk = LeafWalk(layer)
    assert LeafWalk.usable(layer)
    answered, left = 0, set()
    for high in (0, 0xFFFFF80000000000):
        for address in range(high, high + 0x800000, 0x1000):
            for probe in (address, address + 0x7F8):
                mine, theirs = walk.translate(probe), _volatility(layer, probe)
                if mine is None:
                    left.add(theirs if isinstance(theirs, str) else "translated by Volatility")
                else:
                    assert mine == theirs, hex(probe)
                    answered += 1
    assert answered > 300
    # what the walk leaves: not present (refused), the large page and the transition pages (translated)
    assert left == {"PagedInvalidAddressException", "SwappedInvalidAddressException", "translated by Volatility"}


def test_the_pages_an_analysis_reads_translate_as_volatility(scenario_image):
    image = scenario_image("sleep_obfuscation_contexts")
    source = open_image(image, VolatilitySettings(symbols=[image.parent / "symbols"]), lambda *_: None)
    answered = {"kernel": 0, "process": 0}
    for opened in source.processes():
        memory = opened.memory
        if memory is None:
            continue
        user = [a for r in memory.regions() for a in range(r.start, min(r.end, r.start + 0x20000), 0x1000)]
        user += [m.base for m in memory.modules()]
        kernel = [t.object_address for t in memory.threads() if t.object_address]
        for half, layer, addresses in (("process", memory._layer.layer, user),
                                        ("kernel", memory._kernel_layer.layer, kernel)):
            walk = LeafWalk(layer)
            for address in addresses:
                mine = walk.translate(address)
                if mine is not None:
                    assert mine == _volatility(layer, address), f"{opened.info.name} {address:#x}"
                    answered[half] += 1
    assert answered["kernel"] > 20 and answered["process"] > 500


class _OwnFrameNumbers(intel.WindowsIntel32e):
    """A layer that takes the page-frame number its own way (as Linux's layers do)."""

    def _pte_pfn(self, entry: int) -> int:
        return (entry & ((1 << 40) - 1)) >> 13


def test_a_layer_with_its_own_frame_numbers_is_asked_for_them():
    context = contexts.Context()
    context.add_layer(physical.BufferDataLayer(context, "base", "base", bytes(_tables())))
    context.config["virtual.memory_layer"] = "base"
    context.config["virtual.page_map_offset"] = PML4
    layer = _OwnFrameNumbers(context, "virtual", "virtual")
    context.add_layer(layer)
    walk, plain = LeafWalk(layer), LeafWalk(_layer())
    differ = 0
    for address in range(0, 0x200000, 0x1000):
        mine, usual = walk.translate(address), plain.translate(address)
        assert (mine is None) == (usual is None)
        if mine is not None:
            entry = struct.unpack_from("<Q", bytes(_tables()), PT + (address >> 12) * 8)[0]
            assert mine[0] == layer._pte_pfn(entry) << 12 | (address & 0xFFF)
            differ += mine != usual
    assert differ > 0
