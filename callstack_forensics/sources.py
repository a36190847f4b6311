"""Open what a responder hands us: a user-mode minidump or a full memory image.

A minidump is read here, by the core's own reader; a memory image needs Volatility,
which the core does not import: :func:`open_source` takes an ``open_image`` function from
the front end (the CLI passes the Volatility session of ``plugins/``). Either way the
result is a :class:`~callstack_forensics.analysis.Source`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable, Iterator, Sequence

from .analysis.model import OpenedProcess, Source, SourceInfo
from .memory import ProcessMemory
from .memory.modulefiles import ModuleFileMemory, ModuleFiles

MINIDUMP_SIGNATURE = b"MDMP"


class SourceError(Exception):
    """The input cannot be analysed; the message says what to do about it."""


def sniff(path: Path) -> str:
    """``minidump`` or ``image``; raises SourceError for missing, unreadable or empty files."""
    if path.is_dir():
        raise SourceError(f"{path}: is a folder; give a memory image or a minidump file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except FileNotFoundError as exc:
        raise SourceError(f"{path}: no such file") from exc
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if not head:
        raise SourceError(f"{path}: empty file")
    return "minidump" if head[:4] == MINIDUMP_SIGNATURE else "image"


def open_minidump(path: Path) -> ProcessMemory:
    from .memory.minidump import MinidumpError, MinidumpMemory

    try:
        return MinidumpMemory(path)
    except MinidumpError as exc:
        raise SourceError(f"{path}: not a usable minidump: {exc}") from exc


class MinidumpSource:
    """The one process of a minidump; for a normal dump, module images from ``modules_dirs``."""

    def __init__(self, path: Path, modules_dirs: Sequence[Path] = ()) -> None:
        dump = open_minidump(path)
        self.dump = dump
        files = None
        if modules_dirs:
            try:
                files = ModuleFiles.scan(modules_dirs)
            except OSError as exc:
                raise SourceError(f"--modules: {exc}") from exc
        full = dump.holds_module_images()
        # A full dump's own pages always win; given module files, they are still what its exports'
        # first bytes are compared with (a patched export differs from the file it came from).
        self.memory: ProcessMemory = dump if full and files is None else ModuleFileMemory(dump, files)
        details = {"dump": "full memory (module images included)" if full else "normal (no module images)",
                   "protections": "recorded" if dump.has_protections else "not recorded (shown as Unknown)"}
        if modules_dirs:
            details["modules folders"] = ", ".join(map(str, modules_dirs))
        self.info = SourceInfo(str(path), path.stat().st_size, "minidump", windows=dump.windows_version,
                               details=details)

    def processes(self) -> Iterator[OpenedProcess]:
        yield OpenedProcess(self.memory.process, self.memory, self._missing_modules())

    def _missing_modules(self) -> str | None:
        """One note naming the modules whose frames cannot be unwound, and what to do about it."""
        if not isinstance(self.memory, ModuleFileMemory):
            return None
        missing = {name: why for name, why in self.memory.module_sources().items()
                   if not why.startswith(("dump", "file:"))}
        if not missing:
            return None
        names = ", ".join(sorted(missing))
        if self.memory.files is None:
            return (f"normal dump: {len(missing)} modules have no image ({names}); their frames are not unwound "
                    f"and not symbolized: pass --modules DIR with the module files")
        return f"{len(missing)} modules without an image: " + "; ".join(missing[n] for n in sorted(missing))

    def observed_at(self) -> dt.datetime | None:
        return self.dump.captured_at


ImageOpener = Callable[[Path], Source]


def open_source(path: Path, open_image: ImageOpener | None = None, modules_dirs: Sequence[Path] = ()) -> Source:
    """A minidump is opened here; anything else goes to ``open_image`` (Volatility, in the CLI)."""
    if sniff(path) == "minidump":
        return MinidumpSource(path, modules_dirs)
    if open_image is None:
        raise SourceError(f"{path}: not a minidump (no MDMP signature), and no memory-image reader was given")
    return open_image(path)
