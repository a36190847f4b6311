"""An image whose kernel Volatility has found, served to the core as a process source.

The core's analysis asks a source for its processes; this one lists them as
``windows.pslist`` does and opens each through the adapter. A process whose memory cannot
be opened is still yielded, with what its ``_EPROCESS`` alone says and the reason.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Iterator

from volatility3.framework import interfaces
from volatility3.framework.objects import utility

from ..analysis import OpenedProcess, SourceInfo
from ..memory import ProcessInfo
from . import adapter

vollog = logging.getLogger(__name__)


class KernelSource:
    """The processes of an image whose kernel Volatility has found (the core's Source protocol)."""

    def __init__(self, context: interfaces.context.ContextInterface, kernel: str) -> None:
        self.context = context
        self.kernel = kernel
        self.info = SourceInfo(path="", size=0, kind="memory image", windows=_windows_version(context, kernel))

    def processes(self) -> Iterator[OpenedProcess]:
        types = _object_types(self.context, self.kernel)
        for proc in adapter.list_processes(self.context, self.kernel):
            memory = adapter.open_process(self.context, self.kernel, proc, types)
            if isinstance(memory, str):
                yield OpenedProcess(bare_info(proc), None, memory)
            else:
                yield OpenedProcess(memory.process, memory, "; ".join(memory.notes) or None)

    def observed_at(self) -> dt.datetime | None:
        return adapter.system_time(self.context, self.kernel)


def _object_types(context: interfaces.context.ContextInterface, kernel: str) -> adapter.ObjectTypes | None:
    try:
        return adapter.ObjectTypes.read(context, kernel)
    except Exception:  # no type map: handles stay unresolved, events lose those fields only
        return None


def bare_info(proc: Any) -> ProcessInfo:
    """What the _EPROCESS alone says when its address space cannot be opened."""
    try:
        name = utility.array_to_string(proc.ImageFileName)
        return ProcessInfo(int(proc.UniqueProcessId), name, ppid=int(proc.InheritedFromUniqueProcessId),
                           object_address=int(proc.vol.offset))
    except Exception:
        return ProcessInfo(-1, "unreadable", object_address=int(proc.vol.offset))


def _windows_version(context: interfaces.context.ContextInterface, kernel: str) -> str | None:
    """``Windows MAJOR.MINOR.BUILD`` from KUSER_SHARED_DATA and NtBuildNumber, as windows.info reads them."""
    try:
        from volatility3.plugins.windows import info

        kuser = info.Info.get_kuser_structure(context, kernel)
        module = context.modules[kernel]
        build = module.object(object_type="unsigned int", offset=module.get_symbol("NtBuildNumber").address)
        return f"Windows {int(kuser.NtMajorVersion)}.{int(kuser.NtMinorVersion)}.{int(build) & 0xFFFF}"
    except Exception as exc:  # the version is context for the report header only
        vollog.debug("Windows version not read: %s", exc)
        return None
