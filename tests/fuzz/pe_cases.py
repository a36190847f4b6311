"""PE cases: a real sample module with its headers, exports, ``.pdata`` or UNWIND_INFO corrupted.

The mutated image goes through everything that reads a module: ``header_layout`` and
``section_protection`` (the Volatility adapter's per-frame protection), ``parse_image``, symbol
lookup, ``parse_unwind_info`` and ``virtual_unwind`` of its functions, and, when the module is one
of a base process's, the walk of that process's threads with the corrupted module in place.
Documented outcomes are ImageError, UnwindError, MemoryMissing and notes; anything else is a crash.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

from callstack_forensics.engine.context import ProcessContext, WalkOptions
from callstack_forensics.memory import PAGE_SIZE, MemoryMissing, Module
from callstack_forensics.engine.modules import ImageCache
from callstack_forensics.engine.pe import ImageError, PeImage, header_layout, parse_image, section_protection
from callstack_forensics.engine.symbols import export_for, root_function, symbolize
from callstack_forensics.engine.unwind import Registers, StackReader, UnwindError, parse_unwind_info, virtual_unwind
from callstack_forensics.engine.walker import walk_thread
from tests.engine.synth import SynthProcess

from .corpus import BaseProcess, Corpus, ModuleMaterial
from .counts import note_kind
from .mutate import byte_run, flip_bits, get, odd_u32, put, truncated
from .overlay import OverlayMemory
from .stack_cases import check_stack

MAX_PROBED_FUNCTIONS = 24
PROBE_STACK = 0x10000000
PROBE_STACK_SIZE = 0x4000


@dataclass(slots=True)
class PeCase:
    material: ModuleMaterial
    data: bytearray
    holes: set[int] = field(default_factory=set)  # page RVAs not present
    length: int = 0  # bytes present from the start (truncation)

    def reader(self):
        data, holes, length = bytes(self.data), frozenset(self.holes), self.length

        def read(rva: int, size: int) -> bytes:
            if rva < 0 or rva + size > length:
                raise MemoryMissing(rva, "outside the mutated image")
            for page in range(rva & ~(PAGE_SIZE - 1), rva + size, PAGE_SIZE):
                if page in holes:
                    raise MemoryMissing(page)
            return data[rva : rva + size]

        return read


def run_pe_case(rng: random.Random, corpus: Corpus, options: WalkOptions) -> str | None:
    in_process = [m for m in corpus.modules if _process_of(corpus, m) is not None]
    pool = in_process if rng.random() < 0.6 else corpus.modules
    material = rng.choice(pool)
    case = PeCase(material, bytearray(material.data), length=len(material.data))
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4, 8))):
        rng.choice(OPERATORS)(rng, case)
    read = case.reader()
    _header_layout(case)
    try:
        image = parse_image(read)
    except ImageError as exc:
        return note_kind("pe ImageError", str(exc))
    outcome = note_kind("pe note", image.notes[0]) if image.notes else None
    for problem in _probe(rng, image, material):
        outcome = outcome or note_kind("pe unwind", problem)
    walked = _walk(rng, corpus, case, options)
    return outcome or walked


def _header_layout(case: PeCase) -> None:
    header = bytes(case.data[: min(PAGE_SIZE, case.length)]) if 0 not in case.holes else b""
    try:
        _size, sections = header_layout(header)
    except ImageError:
        return
    for section in sections:
        section_protection(section.characteristics)


def _probe(rng: random.Random, image: PeImage, material: ModuleMaterial) -> list[str]:
    """Symbolize and unwind inside the image's functions; the problems met, as text."""
    problems = []
    stack = SynthProcess()
    stack.map(PROBE_STACK, rng.randbytes(PROBE_STACK_SIZE))
    reader = StackReader(stack.read)
    functions = image.runtime_functions
    picked = functions if len(functions) <= MAX_PROBED_FUNCTIONS else rng.sample(functions, MAX_PROBED_FUNCTIONS)
    for function in picked:
        rva = function.begin + rng.randrange(0, max(1, min(function.end - function.begin, 0x1000)))
        symbolize(material.base + rva, material.base + rva, Module(material.base, len(material.data), material.path),
                  image, None)
        export_for(image, rva)
        root_function(image, function)
        regs = Registers({"rip": material.base + rva, "rsp": PROBE_STACK + 0x2000,
                          "rbp": PROBE_STACK + 0x2100, "rbx": 0, "rsi": 0, "rdi": 0})
        try:
            parse_unwind_info(image, function.unwind)
            virtual_unwind(image, material.base, image.function_at(rva), regs, reader, rng.random() < 0.5)
        except (UnwindError, MemoryMissing) as exc:
            problems.append(str(exc))
    return problems


def _process_of(corpus: Corpus, material: ModuleMaterial) -> BaseProcess | None:
    for base in (corpus.x64, corpus.wow64):
        if any(m.base == material.base and m.path == material.path for m in base.memory.modules()):
            return base
    return None


def _walk(rng: random.Random, corpus: Corpus, case: PeCase, options: WalkOptions) -> str | None:
    """Walk two threads of the process with the corrupted module mapped in place of the genuine one."""
    material = case.material
    base = _process_of(corpus, material)
    if base is None:
        return None
    pages: dict[int, bytes | None] = {}
    for rva in range(0, len(material.data), PAGE_SIZE):
        present = rva + PAGE_SIZE <= case.length and rva not in case.holes
        pages[material.base + rva] = bytes(case.data[rva : rva + PAGE_SIZE]) if present else None
    # the genuine parses of every other module stay; this one is parsed afresh from the corrupt bytes
    images = ImageCache({key: value for key, value in base.images.images.items()
                         if key[0] != material.path.lower()})
    memory = OverlayMemory(base.memory, pages, base.threads)
    ctx = ProcessContext(memory, options, images)
    outcome = None
    for thread in rng.sample(base.threads, min(2, len(base.threads))):
        stack = walk_thread(ctx, thread)
        check_stack(stack, options)
        if not stack.complete and outcome is None:
            stop = stack.stop_reason.value if stack.stop_reason else "no stop reason"
            outcome = note_kind(f"pe walk {stop}", stack.note, last=True) if stack.note else f"pe walk: {stop}"
    return outcome


# ---- operators ----------------------------------------------------------------------------


def _near(material: ModuleMaterial) -> list[int]:
    """RVAs of the structures, for pointer swaps and self-pointing fields."""
    exp_rva, exp_size = material.export_directory
    funcs, names, ords, _, _ = material.export_tables
    out = [exp_rva, exp_rva + exp_size - 1, funcs, names, ords, material.pdata[0], material.e_lfanew,
           material.section_table]
    out += list(material.unwind_rvas[:16])
    return [v for v in out if v]


def op_header_field(rng: random.Random, case: PeCase) -> None:
    offset, size = rng.choice(case.material.header_fields)
    value = odd_u32(rng, get(case.data, offset, size), len(case.data), _near(case.material))
    if size == 2 and rng.random() < 0.5:
        value = rng.choice((0, 1, 0x60, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF))
    put(case.data, offset, size, value)


def op_header_bytes(rng: random.Random, case: PeCase) -> None:
    end = case.material.section_table + 40 * len(case.material.sections)
    if rng.random() < 0.5:
        flip_bits(rng, case.data, 0, end, rng.choice((1, 2, 4)))
    else:
        byte_run(rng, case.data, 0x40, end)


def op_export_field(rng: random.Random, case: PeCase) -> None:
    """The directory's counts and table pointers, or entries of the tables (names, ordinals,
    function RVAs pointing back into the directory: forwarders, looping or not)."""
    material = case.material
    exp_rva, exp_size = material.export_directory
    if not exp_rva:
        return op_header_field(rng, case)
    funcs, names, ords, n_funcs, n_names = material.export_tables
    pick = rng.random()
    if pick < 0.4:
        offset = exp_rva + rng.choice((12, 16, 20, 24, 28, 32, 36))
        put(case.data, offset, 4, odd_u32(rng, get(case.data, offset, 4), len(case.data), _near(material)))
    elif pick < 0.6 and n_funcs:
        offset = funcs + 4 * rng.randrange(n_funcs)
        inside = exp_rva + rng.randrange(max(exp_size, 1))  # a forwarder string, maybe a loop
        put(case.data, offset, 4, inside if rng.random() < 0.5 else odd_u32(rng, 0, len(case.data), _near(material)))
    elif pick < 0.8 and n_names:
        offset = names + 4 * rng.randrange(n_names)
        put(case.data, offset, 4, odd_u32(rng, get(case.data, offset, 4), len(case.data), _near(material) + [offset]))
    elif n_names:
        offset = ords + 2 * rng.randrange(n_names)
        put(case.data, offset, 2, rng.choice((0, 1, n_funcs - 1, n_funcs, n_funcs + 1, 0xFFFF)))
    if rng.random() < 0.3:
        byte_run(rng, case.data, exp_rva, exp_rva + max(exp_size, 40))


def op_pdata(rng: random.Random, case: PeCase) -> None:
    """Entries out of order, begin past end, unwind RVAs outside the image or at other records."""
    rva, size = case.material.pdata
    count = size // 12
    if not rva or not count:
        return op_header_field(rng, case)
    index = rng.randrange(count)
    entry = rva + 12 * index
    pick = rng.random()
    if pick < 0.25 and count > 1:
        other = rva + 12 * rng.randrange(count)
        a, b = bytes(case.data[entry : entry + 12]), bytes(case.data[other : other + 12])
        case.data[entry : entry + 12], case.data[other : other + 12] = b, a
    elif pick < 0.4:
        begin, end = struct.unpack_from("<II", case.data, entry)
        struct.pack_into("<II", case.data, entry, end, begin)
    elif pick < 0.8:
        field_offset = rng.choice((0, 4, 8))
        current = get(case.data, entry + field_offset, 4)
        put(case.data, entry + field_offset, 4, odd_u32(rng, current, len(case.data), _near(case.material)))
    else:
        byte_run(rng, case.data, rva, rva + size)


def op_unwind(rng: random.Random, case: PeCase) -> None:
    """Corrupt an UNWIND_INFO record: its header, its codes, or its chain (to itself or another)."""
    unwinds = case.material.unwind_rvas
    if not unwinds:
        return op_header_field(rng, case)
    rva = rng.choice(unwinds)
    count = case.data[rva + 2]
    pick = rng.random()
    if pick < 0.35:
        # chain to a record (itself included): A -> B -> A cycles, or a chain into garbage
        target = rng.choice(unwinds + (rva,)) if rng.random() < 0.8 else odd_u32(rng, rva, len(case.data), [])
        _chain(case.data, rva, target)
        if rng.random() < 0.5 and target != rva:  # and back
            _chain(case.data, target, rva)
    elif pick < 0.55:
        put(case.data, rva + rng.randrange(4), 1, rng.getrandbits(8))
    elif pick < 0.8:
        flip_bits(rng, case.data, rva, rva + 4 + 2 * count + 12, rng.choice((1, 2, 4)))
    else:
        byte_run(rng, case.data, rva, rva + 4 + 2 * count + 12)


def _chain(data: bytearray, rva: int, target: int) -> None:
    """Make the record at ``rva`` chain (UNW_FLAG_CHAININFO) to the record at ``target``."""
    if rva + 4 > len(data):
        return
    count = data[rva + 2]
    data[rva] = (data[rva] & 7) | (4 << 3)
    chain = rva + 4 + 2 * (count + (count & 1))
    put(data, chain, 4, 0)
    put(data, chain + 4, 4, 0x1000)
    put(data, chain + 8, 4, target)


def op_truncate(rng: random.Random, case: PeCase) -> None:
    if rng.random() < 0.5:
        case.length = truncated(rng, len(case.data))
    else:
        case.holes.add(rng.randrange(0, max(len(case.data), 1), PAGE_SIZE))


def op_anywhere(rng: random.Random, case: PeCase) -> None:
    if rng.random() < 0.5:
        flip_bits(rng, case.data, 0, len(case.data), rng.choice((1, 4, 16, 64)))
    else:
        byte_run(rng, case.data, 0, len(case.data))


OPERATORS = (op_header_field, op_header_field, op_header_bytes, op_export_field, op_export_field, op_pdata,
             op_pdata, op_unwind, op_unwind, op_unwind, op_truncate, op_anywhere)
