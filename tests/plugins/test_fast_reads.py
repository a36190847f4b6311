"""FastReads serves exactly Volatility's bytes, and fails exactly where Volatility's read fails.

Its short path keeps each page's translation and reads a raw file with ``pread``; a kept
translation, a read across pages, a read of a page the tables do not map, a read off the end
of the file: each must give the bytes, or the refusal, of the layer's own ``read``. Checked
on every process of a forged image, at the addresses an analysis reads (stacks, TEBs, module
headers, the kernel's threads) and at the edges of pages.
"""

from __future__ import annotations

import random

from volatility3.framework import exceptions

from callstack_forensics.volatility.fastread import FastReads, below_reader
from callstack_forensics.volatility.session import VolatilitySettings, open_image


def _outcome(read, address: int, size: int):
    try:
        return read(address, size, False)
    except exceptions.InvalidAddressException as exc:
        return ("refused", type(exc).__name__)


def _probes(memory, rng: random.Random) -> list[tuple[int, int]]:
    """Addresses in and around every region and module: inside pages, across them, at their ends."""
    probes = []
    for region in memory.regions():
        for start in (region.start, region.end - 0x1000, (region.start + region.end) // 2 & ~0xFFF):
            for offset, size in ((0, 8), (0xFF8, 16), (0x800, 0x1000), (rng.randrange(0x1000), rng.randrange(1, 0x3000))):
                probes.append((start + offset, size))
    for module in memory.modules():
        probes += [(module.base, 0x40), (module.base + 0x3C, 4), (module.base + 0xFFC, 8)]
    return probes


def test_every_read_equals_volatilitys_own(scenario_image):
    image = scenario_image("sleep_obfuscation_contexts")
    source = open_image(image, VolatilitySettings(symbols=[image.parent / "symbols"]), lambda *_: None)
    rng = random.Random(7)
    compared = refused = 0
    for opened in source.processes():
        memory = opened.memory
        if memory is None:
            continue
        fast = memory._layer
        assert isinstance(fast, FastReads)
        for address, size in _probes(memory, rng) * 2:  # twice: the second time from kept translations
            expected = _outcome(fast.layer.read, address, size)
            assert _outcome(fast.read, address, size) == expected, f"{opened.info.name} {address:#x}+{size:#x}"
            compared += 1
            refused += isinstance(expected, tuple)
        assert fast._pages, "no translation was kept"
    assert compared > 1000 and 0 < refused < compared


def test_every_validity_answer_equals_volatilitys_own(scenario_image):
    """is_valid from a kept translation, from a new one, and for ranges it leaves to the layer (empty,
    across pages): always the layer's own answer, on user addresses and on the kernel's threads."""
    image = scenario_image("sleep_obfuscation_contexts")
    source = open_image(image, VolatilitySettings(symbols=[image.parent / "symbols"]), lambda *_: None)
    rng = random.Random(11)
    answers = []
    for opened in source.processes():
        memory = opened.memory
        if memory is None:
            continue
        for fast in (memory._layer, memory._kernel_layer):
            probes = _probes(memory, rng) + [(t.teb, 1) for t in memory.threads() if t.teb]
            probes += [(address - 1, 1) for address, _ in probes] + [(address, 0) for address, _ in probes[:20]]
            for order in (probes, probes[::-1]):  # unknown pages first, then kept ones, and the other way
                for address, size in order:
                    expected = fast.layer.is_valid(address, size)
                    assert fast.is_valid(address, size) == expected, f"{opened.info.name} {address:#x}+{size:#x}"
                    answers.append(expected)
    assert True in answers and False in answers


def test_a_valid_page_keeps_its_translation_for_the_reads_after(scenario_image):
    image = scenario_image("sleep_obfuscation_contexts")
    source = open_image(image, VolatilitySettings(symbols=[image.parent / "symbols"]), lambda *_: None)
    memory = next(o.memory for o in source.processes() if o.memory is not None and o.memory.threads())
    fast = FastReads(memory._layer.layer)
    teb = next(t.teb for t in memory.threads() if t.teb)
    assert fast.is_valid(teb + 8, 16) and (teb & ~0xFFF) in fast._pages
    assert fast.read(teb, 0x30) == fast.layer.read(teb, 0x30)


def test_the_kernel_layer_is_read_through_pread_and_shared_by_every_process(scenario_image):
    image = scenario_image("sleep_obfuscation_contexts")
    source = open_image(image, VolatilitySettings(symbols=[image.parent / "symbols"]), lambda *_: None)
    memories = [o.memory for o in source.processes() if o.memory is not None]
    kernel = {id(m._kernel_layer) for m in memories}
    assert len(kernel) == 1
    layer = memories[0]._kernel_layer
    threads = [t for m in memories for t in m.threads()]
    assert threads and layer._pages
    below = {read.__name__ for read, *_ in layer._pages.values()}
    assert below == {"pread"}  # the forged image is a plain raw file


def test_a_layer_that_is_not_a_plain_file_keeps_its_own_read():
    class Segments:
        """A layer below of another kind (a crash dump's): its own read, after its validity check."""

        def __init__(self) -> None:
            self.reads = []

        def is_valid(self, offset: int, length: int) -> bool:
            return offset + length <= 0x2000

        def read(self, offset: int, length: int, pad: bool = False) -> bytes:
            self.reads.append((offset, length))
            return bytes(length)

    layer = Segments()
    read = below_reader(layer)
    assert read(0x100, 8) == bytes(8) and layer.reads == [(0x100, 8)]
    try:
        read(0x1FFC, 8)
    except ValueError:
        pass
    else:
        raise AssertionError("a read past the layer's end was served")


def test_held_pages_serve_exactly_the_bytes_and_refusals_of_the_layer(scenario_image):
    """With pages held (as on the kernel's layer), every probe, the first time and from the held
    pages after, still gives the layer's own bytes or its refusal."""
    image = scenario_image("sleep_obfuscation_contexts")
    source = open_image(image, VolatilitySettings(symbols=[image.parent / "symbols"]), lambda *_: None)
    rng = random.Random(5)
    compared = 0
    for opened in source.processes():
        memory = opened.memory
        if memory is None:
            continue
        held = FastReads(memory._layer.layer, hold=8)  # few: pages are dropped and read again
        for address, size in _probes(memory, rng) * 2:
            assert _outcome(held.read, address, size) == _outcome(held.layer.read, address, size)
            compared += 1
        assert 0 < len(held._held) <= 8
    assert compared > 1000


def test_a_page_cut_by_the_end_of_the_layer_below_is_read_as_asked_and_not_held():
    """A translated page whose physical page runs past the file's end (a truncated image): the part
    that exists reads, the part that does not is refused, and nothing of it is held."""

    class Below:
        """A layer below of 0x1800 bytes: its second page is cut in half."""

        def is_valid(self, offset: int, length: int = 1) -> bool:
            return 0 <= offset and offset + length <= 0x1800

        def read(self, offset: int, length: int, pad: bool = False) -> bytes:
            if not self.is_valid(offset, length):
                raise exceptions.InvalidAddressException("below", offset, "past the end")
            return bytes((offset + i) & 0xFF for i in range(length))

    class Upper:
        """An identity translation over it, reading as Volatility's layers do."""

        def __init__(self) -> None:
            self.context = type("Context", (), {"layers": {"below": Below()}})()

        def _translate(self, offset: int) -> tuple[int, int, str]:
            return offset, 0x1000, "below"

        def read(self, offset: int, length: int, pad: bool = False) -> bytes:
            return self.context.layers["below"].read(offset, length)

    fast = FastReads(Upper(), hold=4)
    assert fast.read(0x1010, 8) == bytes(range(0x10, 0x18))
    assert fast.read(0x17F8, 8) == bytes(range(0xF8, 0x100))
    assert 0x1000 not in fast._held
    assert _outcome(fast.read, 0x17FC, 8) == ("refused", "InvalidAddressException")
    assert fast.read(0x20, 8) == bytes(range(0x20, 0x28)) and 0 in fast._held


def test_a_plain_files_reader_refuses_exactly_what_its_file_layer_refuses(tmp_path):
    """The pread path checks the file layer's bounds itself: every read at and around both ends of
    a file whose size is no multiple of a page reads or is refused as the layer's own."""
    from volatility3.framework import contexts
    from volatility3.framework.layers.physical import FileLayer

    path = tmp_path / "image.raw"
    path.write_bytes(bytes(i & 0xFF for i in range(0x2345)))
    context = contexts.Context()
    context.config["layers.file.location"] = path.as_uri()
    layer = FileLayer(context, "layers.file", "file")
    read = below_reader(layer)
    assert read.__name__ == "pread"
    for offset in (-8, -1, 0, 1, 0x1FF8, 0x2300, 0x233D, 0x2340, 0x2344, 0x2345, 0x3000):
        for length in (0, 1, 8, 0x100):
            try:
                expected = layer.read(offset, length) if layer.is_valid(offset, length) else "refused"
            except ValueError:
                expected = "refused"
            try:
                got = read(offset, length)
            except ValueError:
                got = "refused"
            assert got == expected, (offset, length)
