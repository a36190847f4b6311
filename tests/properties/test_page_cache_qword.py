"""``PageCache.qword`` is ``read(address, 8)`` as an integer: the same value, or the same
MemoryMissing, on whole pages, across page ends, on pages the source lacks, and on pages a
source holds only in part (a minidump's stack from RSP-8), cold or with the pages held."""

from __future__ import annotations

import random
import struct

import pytest

from callstack_forensics.memory import PAGE_SIZE, MemoryMissing
from callstack_forensics.memory.pagecache import PageCache

from tests.engine.synth import SynthProcess


class _PartlyHeld(SynthProcess):
    """Whole pages, plus one page of which only ``[low, high)`` reads (a minidump's piece)."""

    def __init__(self, low: int, high: int) -> None:
        super().__init__()
        self.low, self.high = low, high
        self.piece = bytes(random.Random(low).getrandbits(8) for _ in range(high - low))

    def read(self, address: int, size: int) -> bytes:
        if self.low <= address and address + size <= self.high:
            return self.piece[address - self.low:address - self.low + size]
        return super().read(address, size)


def _answer(call, address):
    try:
        return call(address)
    except MemoryMissing:
        return "missing"


@pytest.mark.parametrize("seed", range(20))
def test_qword_is_read_as_an_integer(seed):
    rng = random.Random(seed)
    base = 0x7FF000000000
    memory = _PartlyHeld(base + 5 * PAGE_SIZE + 0x100, base + 5 * PAGE_SIZE + 0x300)
    for page in rng.sample(range(8), 5):
        memory.map(base + page * PAGE_SIZE, bytes(rng.getrandbits(8) for _ in range(PAGE_SIZE)))
    addresses = [base + rng.randrange(-16, 9 * PAGE_SIZE) for _ in range(300)]
    addresses += [base + p * PAGE_SIZE - d for p in range(1, 9) for d in range(0, 10)]
    addresses += [base + 5 * PAGE_SIZE + 0x100 + d for d in range(-2, 0x202, 7)]
    cold, warm, plain = PageCache(memory), PageCache(memory), PageCache(memory)
    for address in addresses:
        _answer(warm.qword, address)
    seen = set()
    for address in addresses:
        expected = _answer(lambda a: struct.unpack("<Q", plain.read(a, 8))[0], address)
        assert _answer(cold.qword, address) == expected, hex(address)
        assert _answer(warm.qword, address) == expected, hex(address)
        seen.add(expected == "missing")
    assert seen == {True, False}
