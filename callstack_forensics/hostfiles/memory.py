"""Module pages an image lacks, read from the matching collected file.

Real memory images often miss a module's headers, ``.pdata`` or code pages (never touched, or
trimmed); unwinding needs them. The same wrapper that serves a normal minidump's modules
(:class:`~callstack_forensics.memory.modulefiles.ModuleFileMemory`) serves them here from
``--files``, only from a file that is the module (path, SizeOfImage, timestamp), and only for
pages the image does not hold: what the image holds always wins.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..memory.modulefiles import ModuleFileMemory
from .facts import HostFiles


class HostFileMemory(ModuleFileMemory):
    """A process's memory with missing module pages from ``--files``; anything else the source
    offers (its notes, its kernel object) is still reached through it."""

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet: no recursion while the object is being built
            raise AttributeError(name)
        return getattr(self.inner, name)


def with_module_files(opened: Any, files: HostFiles) -> Any:
    """``opened`` (an OpenedProcess) with its memory wrapped; unchanged when it has none."""
    if opened.memory is None:
        return opened
    return dataclasses.replace(opened, memory=HostFileMemory(opened.memory, files))  # type: ignore[arg-type]
