"""The source file's SHA-256, for the case report: it proves which file the findings came from."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

CHUNK = 8 << 20


def sha256_file(path: Path, on_bytes: Callable[[int], None] | None = None) -> str:
    """Hash in chunks (a 16 GB image must not be read into memory); ``on_bytes`` gets the running total.

    One buffer is read into over and over: a fresh bytes object per chunk costs the kernel a page
    fault per page, five times the hashing itself on a multi-GiB (sparse) image."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    done = 0
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
            done += count
            if on_bytes is not None:
                on_bytes(done)
    return digest.hexdigest()
