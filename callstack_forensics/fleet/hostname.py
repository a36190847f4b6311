"""Which host a source came from: the computer name the memory itself holds, else one from the file.

Prevalence counts hosts, not files: an image and a process dump taken on the same machine are one
host, and two images named ``mem.raw`` from two machines are two. Windows gives every process the
machine's ``COMPUTERNAME`` in its environment block, so the name is read from there (through the
same :class:`ProcessMemory` interface for images and full minidumps); where no process's block is
readable (a normal minidump holds no PEB), the file's name stands in and ``origin`` says so.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..memory import MemoryMissing, ProcessMemory

# Fixed x64 ABI offsets (the same on every Windows build since Vista): TEB.ProcessEnvironmentBlock,
# PEB.ProcessParameters, RTL_USER_PROCESS_PARAMETERS.Environment and .EnvironmentSize.
TEB_PEB, PEB_PARAMETERS, PARAMS_ENVIRONMENT, PARAMS_ENVIRONMENT_SIZE = 0x60, 0x20, 0x80, 0x3F0
ENVIRONMENT_MAX = 64 << 10  # a real block is a few KiB; a hostile size must not make us read gigabytes
VARIABLE = "COMPUTERNAME"
ORIGIN_MEMORY = "environment"
ORIGIN_FILE = "file name"
# Suffixes that name the capture, not the machine: WS-0042.raw, WS-0042.mem.gz, notepad.dmp.
_CAPTURE_SUFFIX = re.compile(r"(\.(raw|mem|vmem|img|bin|lime|dmp|mdmp|aff4|gz|xz|zip|7z|e01))+$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class HostName:
    """A host's name and where it was read: ``environment`` (the memory) or ``file name``."""

    name: str
    origin: str


def host_name(memories: Iterable[ProcessMemory], path: Path) -> HostName:
    """The first ``COMPUTERNAME`` any process's environment holds, else a name from ``path``."""
    for memory in memories:
        name = computer_name(memory)
        if name:
            return HostName(name.upper(), ORIGIN_MEMORY)
    return HostName(name_from_file(path), ORIGIN_FILE)


def name_from_file(path: Path) -> str:
    """``WS-0042`` for ``/cases/WS-0042.raw``; the whole name when nothing else is left."""
    return _CAPTURE_SUFFIX.sub("", path.name) or path.name


def computer_name(memory: ProcessMemory) -> str | None:
    """``COMPUTERNAME`` from the environment of ``memory``'s process, or None when unreadable."""
    for thread in memory.threads():
        if not thread.teb:
            continue
        try:
            block = _environment_block(memory, thread.teb)
        except (MemoryMissing, struct.error, ValueError):
            continue
        return environment(block).get(VARIABLE)
    return None


def _environment_block(memory: ProcessMemory, teb: int) -> bytes:
    peb = _pointer(memory, teb + TEB_PEB)
    params = _pointer(memory, peb + PEB_PARAMETERS)
    start = _pointer(memory, params + PARAMS_ENVIRONMENT)
    size = struct.unpack("<Q", memory.read(params + PARAMS_ENVIRONMENT_SIZE, 8))[0]
    size = size if 0 < size <= ENVIRONMENT_MAX else ENVIRONMENT_MAX
    return memory.read_partial(start, size)


def _pointer(memory: ProcessMemory, address: int) -> int:
    value = struct.unpack("<Q", memory.read(address, 8))[0]
    if not value:
        raise ValueError(f"null pointer at {address:#x}")
    return value


def environment(block: bytes) -> dict[str, str]:
    """``NAME=value`` strings of a UTF-16 environment block, up to its empty string; names upper-cased
    (Windows compares them without case). Entries such as ``=C:=C:\\`` (per-drive folders) are skipped."""
    text = block[: len(block) - len(block) % 2].decode("utf-16-le", errors="replace")
    out: dict[str, str] = {}
    for entry in text.split("\0"):
        if not entry:
            break
        name, sep, value = entry.partition("=")
        if sep and name:
            out.setdefault(name.upper(), value)
    return out
