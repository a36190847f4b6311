"""Unwind cases: raw UNWIND_INFO records, real ones corrupted or random, chained into each other.

A hand-built image (tests/engine/synth.SynthImage) holds a few functions whose records come from
the sample modules (mutated) or from random bytes, some chained to another record or to
themselves; the unwinder then runs from random places in them over a random stack. It must
return registers or raise UnwindError / MemoryMissing, and always stop.
"""

from __future__ import annotations

import random
import struct

from callstack_forensics.memory import MemoryMissing, Module
from callstack_forensics.engine.pe import Export
from callstack_forensics.engine.symbols import export_for, root_function, symbolize
from callstack_forensics.engine.unwind import Registers, StackReader, UnwindError, parse_unwind_info, virtual_unwind
from tests.engine.synth import CODE_RVA, UNWIND_RVA, SynthImage, SynthProcess

from .corpus import Corpus
from .counts import note_kind
from .mutate import byte_run, flip_bits, put

BASE = 0x7FF700000000
STACK = 0x00500000
STACK_SIZE = 0x3000
SLOT = 0x40  # bytes of code per function
EPILOGS = (b"\x48\x83\xc4\x28\xc3", b"\x48\x83\xc4\x28\x5b\x5d\xc3", b"\x48\x81\xc4\x00\x01\x00\x00\x41\x5f\xc3",
           b"\x48\x8d\x65\x10\x5d\xc3", b"\x5b\xe9\x00\x10\x00\x00", b"\x48\xff\xe0", b"\xf3\xc3", b"\xc2\x08\x00")


def run_unwind_case(rng: random.Random, corpus: Corpus) -> str | None:
    count = rng.randint(1, 4)
    records = [_record(rng, corpus) for _ in range(count)]
    # every record gets a fixed slot (room for a chained entry after it), so that chains can
    # name another record's RVA before the image is laid out (SynthImage packs them in order)
    sizes = [(len(r) + 4 + 2 * 256 + 12 + 3) & ~3 for r in records]
    rvas = [UNWIND_RVA + sum(sizes[:i]) for i in range(count)]
    records = [_maybe_chain(rng, bytearray(r), rvas).ljust(size, b"\0") for r, size in zip(records, sizes)]
    code = bytearray(b"".join(_code(rng, corpus) for _ in range(count)))
    functions = []
    for index, record in enumerate(records):
        begin = CODE_RVA + SLOT * index
        functions.append((begin, begin + rng.choice((1, 8, 0x10, 0x20, SLOT)), bytes(record)))
    _data, image = SynthImage(bytes(code), functions).build()
    image.exports = [Export("Fn", CODE_RVA, 1)]
    image._export_rvas = [CODE_RVA]
    stack = SynthProcess()
    stack.map(STACK, _stack_bytes(rng, corpus))
    stack.map(BASE + CODE_RVA, bytes(code), "R-X")
    reader = StackReader(stack.read)
    outcome = None
    for _ in range(rng.randint(1, 3)):
        rva = CODE_RVA + rng.randrange(0, SLOT * count + 2)
        frame0 = rng.random() < 0.5
        function = image.function_at(rva if frame0 else rva - 1)
        regs = Registers({"rip": BASE + rva, "rsp": STACK + rng.randrange(0, STACK_SIZE, 8),
                          "rbp": rng.choice((STACK + rng.randrange(0, STACK_SIZE), 0, rng.getrandbits(64)))})
        if rng.random() < 0.2:
            regs.set(rng.choice(("rbp", "rbx", "rsp")), None)
        symbolize(BASE + rva, BASE + rva, Module(BASE, 0x5000, "c:\\fuzz.dll"), image, None)
        export_for(image, rva)
        try:
            if function is not None:
                root_function(image, function)
                parse_unwind_info(image, function.unwind)
            out = virtual_unwind(image, BASE, function, regs, reader, frame0)
        except UnwindError as exc:
            outcome = outcome or note_kind("unwind UnwindError", str(exc))
            continue
        except MemoryMissing as exc:
            outcome = outcome or note_kind("unwind MemoryMissing", exc.reason)
            continue
        if not isinstance(out.rip, int) or not isinstance(out.rsp, int):
            raise AssertionError(f"virtual_unwind returned rip={out.rip!r} rsp={out.rsp!r}")
    return outcome


def _record(rng: random.Random, corpus: Corpus) -> bytes:
    pick = rng.random()
    if pick < 0.6 and corpus.unwind_records:
        record = bytearray(rng.choice(corpus.unwind_records))
        for _ in range(rng.choice((0, 1, 1, 2, 4))):
            if rng.random() < 0.5:
                flip_bits(rng, record, 0, len(record))
            elif rng.random() < 0.5:
                byte_run(rng, record, 0, len(record))
            else:
                put(record, rng.randrange(4), 1, rng.getrandbits(8))  # version/flags, prolog, count, frame
        return bytes(record)
    if pick < 0.85:
        slots = rng.randint(0, 12)
        head = bytes([rng.choice((1, 2)) | (rng.choice((0, 0, 1, 2, 3)) << 3), rng.randrange(0x40), slots,
                      rng.randrange(16) | (rng.randrange(16) << 4)])
        body = b"".join(struct.pack("<H", rng.randrange(0x40) | (rng.randrange(11) << 8) | (rng.randrange(16) << 12))
                        for _ in range(slots))
        return head + body
    return rng.randbytes(rng.randint(0, 40))


def _maybe_chain(rng: random.Random, record: bytearray, rvas: list[int]) -> bytearray:
    """Append a chained entry (to a record of this image, itself included, or anywhere)."""
    if len(record) < 4 or rng.random() < 0.6:
        return record
    count = record[2]
    record[0] = (record[0] & 7) | (4 << 3)
    end = 4 + 2 * (count + (count & 1))
    if len(record) < end:
        record.extend(bytes(end - len(record)))
    target = rng.choice(rvas) if rng.random() < 0.85 else rng.getrandbits(32)
    return record[:end] + bytearray(struct.pack("<III", CODE_RVA, CODE_RVA + SLOT, target))


def _code(rng: random.Random, corpus: Corpus) -> bytes:
    pick = rng.random()
    if pick < 0.4 and corpus.code_chunks:
        chunk = rng.choice(corpus.code_chunks)
        start = rng.randrange(0, max(1, len(chunk) - 8))
        code = chunk[start:]
    elif pick < 0.8:
        code = rng.randbytes(rng.randrange(0, 16)) + rng.choice(EPILOGS)
    else:
        code = rng.randbytes(SLOT)
    return (code + b"\xcc" * SLOT)[:SLOT]


def _stack_bytes(rng: random.Random, corpus: Corpus) -> bytes:
    """A stack of return addresses, stack pointers and noise."""
    out = bytearray(rng.randbytes(STACK_SIZE)) if rng.random() < 0.3 else bytearray(STACK_SIZE)
    for offset in range(0, STACK_SIZE, 8):
        pick = rng.random()
        if pick < 0.1:
            struct.pack_into("<Q", out, offset, BASE + CODE_RVA + rng.randrange(SLOT * 4))
        elif pick < 0.2:
            struct.pack_into("<Q", out, offset, STACK + rng.randrange(STACK_SIZE))
        elif pick < 0.22:
            struct.pack_into("<Q", out, offset, STACK + offset)  # points at itself
    return bytes(out)
