"""Mutation operators: how a smeared or crafted page differs from the genuine one.

Every operator takes the case's own ``random.Random``, so a case is rebuilt from its seed and
index alone. Values are chosen where they hurt: zero and all-ones, sizes just past an end,
pointers into other pages, and values that point at themselves (the cycles a walker or a chain
follower must notice).
"""

from __future__ import annotations

import random
import struct

BOUNDARY_U32 = (0, 1, 2, 3, 4, 7, 8, 0xC, 0x10, 0x7F, 0x80, 0xFF, 0x100, 0xFFF, 0x1000, 0xFFFF, 0x10000,
                0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)
FILL_BYTES = (0x00, 0xFF, 0xCC, 0x41, 0x90, 0xC3)


def flip_bits(rng: random.Random, buf: bytearray, lo: int, hi: int, count: int = 1) -> None:
    """Flip ``count`` random bits in ``buf[lo:hi]``."""
    hi = min(hi, len(buf))
    if hi <= lo:
        return
    for _ in range(count):
        at = rng.randrange(lo, hi)
        buf[at] ^= 1 << rng.randrange(8)


def byte_run(rng: random.Random, buf: bytearray, lo: int, hi: int) -> None:
    """Overwrite a run of bytes in ``buf[lo:hi]`` with one fill byte or random bytes."""
    hi = min(hi, len(buf))
    if hi <= lo:
        return
    start = rng.randrange(lo, hi)
    length = min(hi - start, rng.choice((1, 2, 4, 8, 16, 32, 64, 256, 1024)))
    if rng.random() < 0.5:
        run = bytes([rng.choice(FILL_BYTES)]) * length
    else:
        run = rng.randbytes(length)
    buf[start : start + length] = run


def put(buf: bytearray, offset: int, size: int, value: int) -> None:
    """Write an unsigned little-endian integer (truncated to ``size`` bytes) if it fits."""
    if 0 <= offset and offset + size <= len(buf):
        buf[offset : offset + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def get(buf: bytes | bytearray, offset: int, size: int) -> int:
    if 0 <= offset and offset + size <= len(buf):
        return int.from_bytes(buf[offset : offset + size], "little")
    return 0


def odd_u32(rng: random.Random, current: int, image_size: int, near: list[int]) -> int:
    """A value for a 32-bit field: a boundary, around the image's end, the field's own value
    nudged, or another structure's RVA (``near``: pointer swaps and self-pointing values)."""
    pick = rng.random()
    if pick < 0.3:
        return rng.choice(BOUNDARY_U32)
    if pick < 0.45:
        return image_size + rng.choice((-12, -8, -4, -1, 0, 1, 4, 0x1000, 0x100000))
    if pick < 0.6:
        return current + rng.choice((-0x1000, -16, -12, -8, -4, -1, 1, 4, 8, 12, 16, 0x1000))
    if pick < 0.85 and near:
        return rng.choice(near) + rng.choice((0, 0, 0, 1, 2, 4, 12))
    return rng.getrandbits(32)


def truncated(rng: random.Random, size: int) -> int:
    """A length to cut a ``size``-byte buffer to: often a page boundary, sometimes mid-structure."""
    if rng.random() < 0.5:
        return rng.randrange(0, max(size, 1), 0x1000)
    return rng.randrange(0, max(size, 1))


def u64(data: bytes | bytearray, offset: int) -> int:
    return struct.unpack_from("<Q", data, offset)[0]
