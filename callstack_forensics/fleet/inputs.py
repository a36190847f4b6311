"""What ``fleet SOURCES...`` means: files as given, folders searched for captures, globs expanded.

A collection folder (KAPE, Velociraptor, an EDR's live-response share) holds more than captures:
logs, hashes, the forge's symbols/. In a folder only files that look like a capture are taken:
a minidump or Windows crash dump by its signature, or a memory image by its usual extension.
A file named on the command line, directly or by a glob, is always taken: the person chose it.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".raw", ".mem", ".vmem", ".img", ".bin", ".lime", ".dd", ".dmp", ".mdmp", ".core"})
SIGNATURES = (b"MDMP", b"PAGEDU64", b"PAGEDUMP", b"EMiL")  # minidump, crash dumps, LiME
GLOB_CHARS = frozenset("*?[")


class InputError(Exception):
    """A SOURCES argument names nothing analysable; the message says which."""


@dataclass(slots=True)
class Inputs:
    files: list[Path] = field(default_factory=list)
    ignored: int = 0  # files in the given folders that do not look like captures


def expand(arguments: list[str], exclude: Path | None = None) -> Inputs:
    """Every source the arguments name, each once, in a stable order; ``exclude`` (the case folder)
    is never searched. An argument that names nothing is an InputError."""
    out = Inputs()
    seen: set[Path] = set()
    for argument in arguments:
        found = _one(argument, exclude, out)
        if not found:
            raise InputError(f"{argument}: {_why_nothing(argument)}")
        for path in found:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                out.files.append(path)
    return out


def _one(argument: str, exclude: Path | None, out: Inputs) -> list[Path]:
    path = Path(argument)
    if path.is_file():
        return [path]
    if path.is_dir():
        return _folder(path, exclude, out)
    if GLOB_CHARS & set(argument):
        found: list[Path] = []
        for match in sorted(glob.glob(argument, recursive=True)):
            item = Path(match)
            found += [item] if item.is_file() else _folder(item, exclude, out) if item.is_dir() else []
        return found
    return []


def _folder(folder: Path, exclude: Path | None, out: Inputs) -> list[Path]:
    skip = exclude.resolve() if exclude is not None else None
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (skip is None or Path(root, d).resolve() != skip))
        for name in sorted(files):
            path = Path(root, name)
            if not name.startswith(".") and looks_like_capture(path):
                found.append(path)
            else:
                out.ignored += 1
    return found


def looks_like_capture(path: Path) -> bool:
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError:
        return False
    return any(head.startswith(s) for s in SIGNATURES)


def _why_nothing(argument: str) -> str:
    path = Path(argument)
    if path.is_dir():
        return f"no memory image or minidump in this folder (looked for {', '.join(sorted(IMAGE_SUFFIXES))} " \
               "and the minidump/crash-dump signatures)"
    if GLOB_CHARS & set(argument):
        return "the pattern matches no file"
    return "no such file or folder"
