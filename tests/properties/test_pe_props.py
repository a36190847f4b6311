"""The PE reader on random and mutated PE bytes: a PeImage or ImageError, in bounded time.

Starts from real images (the mingw-built sample modules, mapped as the loader maps them, and
tests/engine/pe_builder's synth.dll) and from random bytes. Whatever parses must be usable:
exports sorted by address, .pdata entries sorted with begin < end, lookups that never raise. The
module cache (modules.ImageCache) turns every failure into a reason string, never an exception.
"""

from __future__ import annotations

from pathlib import Path

import pefile
from hypothesis import given
from hypothesis import strategies as st

from callstack_forensics.memory import MemoryMissing, Module, RegionKind
from callstack_forensics.engine.modules import ImageCache
from callstack_forensics.engine.pe import ImageError, PeImage, header_layout, parse_image, section_protection
from callstack_forensics.engine.symbols import export_for
from tests.engine.pe_builder import build_pe
from tests.engine.synth import SynthProcess
from tests.engine.test_walker import EXPORTS, FUNCS, code_bytes

from .common import PROPERTY, bounded

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "samples" / "modules" / "bin").glob("*/*.dll")) + \
    sorted((ROOT / "samples" / "modules" / "bin").glob("*/legacyapp.exe"))[:1] + \
    sorted((ROOT / "samples" / "modules" / "bin" / "x64").glob("explorer.exe"))


def mapped(path: Path) -> bytes:
    pe = pefile.PE(str(path), fast_load=True)
    return bytes(pe.get_memory_mapped_image())


IMAGES = [mapped(p) for p in SAMPLES] + [build_pe(code_bytes(), FUNCS, EXPORTS)]


def reader(data: bytes, present: int | None = None):
    present = len(data) if present is None else present

    def read(rva: int, size: int) -> bytes:
        if rva < 0 or rva + size > present:
            raise MemoryMissing(rva)
        return data[rva : rva + size]

    return read


def check_usable(image: PeImage, probes: list[int]) -> None:
    """What the walker and symbolizer rely on, whatever the bytes were."""
    rvas = [e.rva for e in image.exports]
    assert rvas == sorted(rvas)
    functions = image.runtime_functions
    assert all(f.begin < f.end for f in functions)
    assert [f.begin for f in functions] == sorted(f.begin for f in functions)
    for rva in probes:
        found = image.function_at(rva)
        assert found is None or found.contains(rva)
        image.is_code(rva)
        export_for(image, rva)


mutation = st.lists(st.tuples(st.integers(0, 0x7FFF), st.integers(0, 255)), min_size=1, max_size=24)
header_mutation = st.lists(st.tuples(st.integers(0, 0x3FF), st.integers(0, 255)), min_size=1, max_size=8)
probes = st.lists(st.integers(0, 0x10000), max_size=8)


def mutate(data: bytes, changes: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for offset, value in changes:
        if offset < len(out):
            out[offset] = value
    return bytes(out)


@PROPERTY
@given(st.binary(max_size=0x1200), st.booleans(), probes)
def test_random_bytes(data, with_mz, probe):
    if with_mz:
        data = b"MZ" + data[2:]
    with bounded():
        try:
            image = parse_image(reader(data))
        except ImageError:
            return
        check_usable(image, probe)


@PROPERTY
@given(st.sampled_from(range(len(IMAGES))), mutation, probes, st.one_of(st.none(), st.integers(0, 0x8000)))
def test_mutated_real_images(which, changes, probe, present):
    data = mutate(IMAGES[which], changes)
    with bounded():
        try:
            image = parse_image(reader(data, present))
        except ImageError:
            return
        check_usable(image, probe)


@PROPERTY
@given(st.sampled_from(range(len(IMAGES))), header_mutation, probes)
def test_mutated_headers(which, changes, probe):
    """Changes confined to the headers, where a mutation is most likely to change the parse."""
    data = mutate(IMAGES[which], changes)
    with bounded():
        try:
            image = parse_image(reader(data))
        except ImageError:
            image = None
        if image is not None:
            check_usable(image, probe)
        try:
            size, sections = header_layout(data[:0x1000])
        except ImageError:
            return
    assert isinstance(size, int) and len(sections) <= 96
    for section in sections:
        protection = section_protection(section.characteristics)
        assert len(protection) == 3 and set(protection) <= set("RWX-")


@PROPERTY
@given(st.binary(max_size=0x1000))
def test_header_layout_on_random_bytes(data):
    with bounded():
        try:
            header_layout(data)
        except ImageError:
            pass


@PROPERTY
@given(st.integers(0, 0xFFFFFFFF))
def test_section_protection_spells_every_value(characteristics):
    protection = section_protection(characteristics)
    assert protection == ("R" if characteristics & 0x40000000 else "-") + \
        ("W" if characteristics & 0x80000000 else "-") + ("X" if characteristics & 0x20000000 else "-")


@PROPERTY
@given(st.sampled_from(range(len(IMAGES))), mutation, st.sets(st.integers(0, 7), max_size=3))
def test_the_module_cache_never_raises(which, changes, holes):
    """Through ProcessModules' cache, as the walker meets a module: an image or a reason."""
    data = mutate(IMAGES[which], changes)
    base = 0x7FF800000000
    proc = SynthProcess()
    proc.map(base, data, "R-X", RegionKind.IMAGE, "c:\\m.dll")
    for page in holes:
        proc.unmap_page(base + page * 0x1000)
    with bounded():
        found = ImageCache().get(proc, Module(base, len(data), "c:\\m.dll"))
    assert isinstance(found, (PeImage, str))
