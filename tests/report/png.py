"""A small PNG reader for the screenshot test: enough to count colours without Pillow.

Chromium writes 8-bit RGB or RGBA, non-interlaced PNGs; this reads exactly those (checking
every chunk's CRC) and refuses anything else, so a corrupt or unexpected file fails loudly.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {2: 3, 6: 4}  # colour type -> samples per pixel (RGB, RGBA)


class PngError(Exception):
    pass


@dataclass(frozen=True)
class Png:
    width: int
    height: int
    channels: int
    rows: list[bytes]  # unfiltered scanlines, width * channels bytes each

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        row, at = self.rows[y], x * self.channels
        return row[at], row[at + 1], row[at + 2]

    def colours(self, step: int = 1) -> dict[tuple[int, int, int], int]:
        """RGB -> how many pixels (every ``step``-th pixel in both directions)."""
        counts: dict[tuple[int, int, int], int] = {}
        for y in range(0, self.height, step):
            row = self.rows[y]
            for at in range(0, self.width * self.channels, self.channels * step):
                rgb = (row[at], row[at + 1], row[at + 2])
                counts[rgb] = counts.get(rgb, 0) + 1
        return counts


def read_png(data: bytes) -> Png:
    if not data.startswith(SIGNATURE):
        raise PngError("no PNG signature")
    at, header, idat = len(SIGNATURE), None, bytearray()
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length:at + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise PngError(f"bad CRC in {kind!r}")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        at += 12 + length
    if header is None:
        raise PngError("no IHDR")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in CHANNELS or interlace:
        raise PngError(f"unsupported PNG: depth {depth}, colour type {colour}, interlace {interlace}")
    channels = CHANNELS[colour]
    return Png(width, height, channels, _unfilter(zlib.decompress(bytes(idat)), width * channels, height, channels))


def _unfilter(raw: bytes, stride: int, height: int, bpp: int) -> list[bytes]:
    rows: list[bytes] = []
    previous = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], raw[start + 1:start + 1 + stride]
        if kind == 2:
            line = _add_bytes(line, previous)
        elif kind in (1, 3, 4):
            line = _sequential(kind, bytearray(line), previous, bpp)
        elif kind != 0:
            raise PngError(f"row {y}: unknown filter {kind}")
        rows.append(line)
        previous = line
    return rows


def _add_bytes(a: bytes, b: bytes) -> bytes:
    """Bytewise (a + b) mod 256 over whole rows at once (the Up filter, most of Chromium's rows)."""
    n = len(a)
    low, high = int.from_bytes(b"\x7f" * n, "big"), int.from_bytes(b"\x80" * n, "big")
    x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    return (((x & low) + (y & low)) ^ ((x ^ y) & high)).to_bytes(n, "big")


def _sequential(kind: int, line: bytearray, previous: bytes, bpp: int) -> bytes:
    """Sub, Average and Paeth: each byte depends on the one a pixel to its left."""
    stride = len(line)
    if kind == 1:
        for i in range(bpp, stride):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif kind == 3:
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
    else:
        for i in range(bpp):
            line[i] = (line[i] + previous[i]) & 0xFF
        for i in range(bpp, stride):
            a, b, c = line[i - bpp], previous[i], previous[i - bpp]
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - c - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    return bytes(line)
