"""Open what a responder hands us: a user-mode minidump or a full memory image.

Each source yields :class:`ProcessMemory` objects; the rest of the pipeline does
not care where they came from. Memory images go through the Volatility adapter
(``plugins/``), which is loaded only when one is opened, so the core stays free
of Volatility.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .memory import ProcessMemory

MINIDUMP_SIGNATURE = b"MDMP"


class SourceError(Exception):
    """The input cannot be analysed; the message says what to do about it."""


def sniff(path: Path) -> str:
    """``minidump`` or ``image``; raises SourceError for unreadable or empty files."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if not head:
        raise SourceError(f"{path}: empty file")
    return "minidump" if head[:4] == MINIDUMP_SIGNATURE else "image"


def open_minidump(path: Path) -> ProcessMemory:
    from .minidump import MinidumpError, MinidumpMemory

    try:
        return MinidumpMemory(path)
    except MinidumpError as exc:
        raise SourceError(f"{path}: not a usable minidump: {exc}") from exc


def open_processes(path: Path) -> Iterator[ProcessMemory]:
    """Every process the source holds (one for a minidump)."""
    kind = sniff(path)
    if kind == "minidump":
        yield open_minidump(path)
        return
    raise SourceError(
        f"{path}: not a minidump (no MDMP signature); full memory images are read through "
        "Volatility: run `vol -p plugins callstacks.stacks -f IMAGE`"
    )
