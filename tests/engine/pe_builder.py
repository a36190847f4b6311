"""Build small but genuine PE32+ images in mapped layout, for walker tests.

The image has real headers (pefile parses them), a ``.text`` section with the
given code, ``.rdata`` with UNWIND_INFO records and an export directory, and
``.pdata`` with the RUNTIME_FUNCTION entries, so the engine reads it exactly
as it reads a module in a memory image.
"""

from __future__ import annotations

import struct

TEXT_RVA, RDATA_RVA, PDATA_RVA, SIZE = 0x1000, 0x3000, 0x5000, 0x6000


def build_pe(
    code: bytes,
    functions: list[tuple[int, int, bytes]],
    exports: list[tuple[str, int]] = (),
    name: str = "synth.dll",
    indirect: list[tuple[int, int, int]] = (),
) -> bytes:
    """``functions``: (begin rva, end rva, UNWIND_INFO bytes); ``exports``: (name, rva);
    ``indirect``: (begin rva, end rva, begin rva of the function whose ``.pdata`` entry holds its
    unwind info), written as Microsoft's linkers write them: UnwindData = that entry's RVA | 1."""
    img = bytearray(SIZE)
    img[TEXT_RVA : TEXT_RVA + len(code)] = code
    cur = RDATA_RVA
    entries: list[tuple[int, int, int | bytes]] = [*functions, *indirect]
    entries.sort(key=lambda e: e[0])
    slot = {begin: PDATA_RVA + 12 * i for i, (begin, _end, _u) in enumerate(entries)}
    pdata = bytearray()
    for begin, end, info in entries:
        if isinstance(info, int):
            pdata += struct.pack("<III", begin, end, slot[info] | 1)
            continue
        img[cur : cur + len(info)] = info
        pdata += struct.pack("<III", begin, end, cur)
        cur = (cur + len(info) + 3) & ~3
    img[PDATA_RVA : PDATA_RVA + len(pdata)] = pdata
    export_rva, export_size = _exports(img, cur + 0x10, exports, name)
    _headers(img, export_rva, export_size, len(pdata))
    return bytes(img)


def _exports(img: bytearray, at: int, exports, name: str) -> tuple[int, int]:
    if not exports:
        return 0, 0
    exports = sorted(exports)
    n = len(exports)
    funcs, names, ords = at + 40, at + 40 + 4 * n, at + 40 + 8 * n
    strings = ords + 2 * n
    dll_name = strings
    img[dll_name : dll_name + len(name) + 1] = name.encode() + b"\0"
    cur = dll_name + len(name) + 1
    for i, (ename, rva) in enumerate(exports):
        struct.pack_into("<I", img, funcs + 4 * i, rva)
        struct.pack_into("<I", img, names + 4 * i, cur)
        struct.pack_into("<H", img, ords + 2 * i, i)
        img[cur : cur + len(ename) + 1] = ename.encode() + b"\0"
        cur += len(ename) + 1
    struct.pack_into("<IIHHIIIIIII", img, at, 0, 0, 0, 0, dll_name, 1, n, n, funcs, names, ords)
    return at, cur - at


def _headers(img: bytearray, export_rva: int, export_size: int, pdata_size: int) -> None:
    img[0:2] = b"MZ"
    struct.pack_into("<I", img, 0x3C, 0x80)
    img[0x80:0x84] = b"PE\0\0"
    struct.pack_into("<HHIIIHH", img, 0x84, 0x8664, 3, 0x5F5E0FF, 0, 0, 0xF0, 0x2022)
    opt = 0x98
    struct.pack_into("<HBBIIIII", img, opt, 0x20B, 14, 0, 0x2000, 0x3000, 0, TEXT_RVA, TEXT_RVA)
    struct.pack_into("<QII", img, opt + 24, 0x180000000, 0x1000, 0x200)
    struct.pack_into("<HHHHHHIIII", img, opt + 40, 6, 0, 0, 0, 6, 0, 0, SIZE, 0x400, 0)
    struct.pack_into("<HHQQQQII", img, opt + 68, 3, 0x160, 0x100000, 0x1000, 0x100000, 0x1000, 0, 16)
    dirs = opt + 112
    struct.pack_into("<II", img, dirs + 0, export_rva, export_size)
    struct.pack_into("<II", img, dirs + 24, PDATA_RVA, pdata_size)
    sec = opt + 0xF0
    for i, (sname, rva, size, chars) in enumerate(
        ((b".text", TEXT_RVA, 0x2000, 0x60000020), (b".rdata", RDATA_RVA, 0x2000, 0x40000040), (b".pdata", PDATA_RVA, 0x1000, 0x40000040))
    ):
        struct.pack_into("<8sIIIIIIHHI", img, sec + 40 * i, sname, size, rva, size, rva, 0, 0, 0, 0, chars)
