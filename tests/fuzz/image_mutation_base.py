"""What an image mutation is, and the values that hurt: shared by the mutation families.

A mutation is only planned, as byte patches of the raw file (or a length to cut it to):
planning is cheap and runs in the fuzzer's parent, so a case that hangs a worker is still
described, and case ``i`` of seed ``s`` is rebuilt from those two numbers alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from .image_view import ForgedView, Patch
from .mutate import BOUNDARY_U32, FILL_BYTES

NONCANONICAL = 0x0000800000000000
KERNEL_JUNK = 0xFFFFF80000000000
PAGE = 0x1000




@dataclass(frozen=True, slots=True)
class Mutation:
    """One corruption: its family, what it does (for the reproducer), and the bytes it puts."""

    family: str
    what: str
    patches: tuple[Patch, ...] = ()
    truncate: int | None = None  # cut the file to this many bytes

    def __str__(self) -> str:
        return f"{self.family}: {self.what}"


Family = Callable[[random.Random, ForgedView], "Mutation | None"]


# ---- values that hurt -------------------------------------------------------------------


def odd_pointer(rng: random.Random, own: int, near: list[int] = ()) -> int:  # type: ignore[assignment]
    """A pointer value a walker must survive: null, all-ones, non-canonical, an unmapped kernel or
    user address, itself (a self-loop), or another structure's address (a cycle), slightly off."""
    pick = rng.random()
    if pick < 0.3 and near:
        return rng.choice(near) + rng.choice((0, 0, 0, 8, -8, 1))
    if pick < 0.45:
        return own
    return rng.choice((0, 1, 0xFFFFFFFFFFFFFFFF, NONCANONICAL, NONCANONICAL + own % PAGE, KERNEL_JUNK + rng.getrandbits(30),
                       rng.getrandbits(47) & ~7, 0x1000, own ^ (1 << rng.randrange(48)), rng.getrandbits(64)))


def odd_u32(rng: random.Random) -> int:
    return rng.choice(BOUNDARY_U32) if rng.random() < 0.7 else rng.getrandbits(32)


def u64(value: int) -> bytes:
    return (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")


def u32(value: int) -> bytes:
    return (value & 0xFFFFFFFF).to_bytes(4, "little")


def junk(rng: random.Random, size: int) -> bytes:
    if rng.random() < 0.5:
        return bytes([rng.choice(FILL_BYTES)]) * size
    return rng.randbytes(size)


def mutation(family: str, what: str, patches: list[Patch] | None) -> Mutation | None:
    return Mutation(family, what, tuple(patches)) if patches else None
