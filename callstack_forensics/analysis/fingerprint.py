"""The source file's SHA-256, for the case report: it proves which file the findings came from."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

CHUNK = 8 << 20


def sha256_file(path: Path, on_bytes: Callable[[int], None] | None = None) -> str:
    """Hash in chunks (a 16 GB image must not be read into memory); ``on_bytes`` gets the running total."""
    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if on_bytes is not None:
                on_bytes(done)
    return digest.hexdigest()
