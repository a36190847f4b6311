"""Volatility as a library: open a memory image in-process and serve its processes to the core.

``callstack-forensics analyze IMAGE`` must not shell out to ``vol``: it builds a Volatility
context here, lets the automagic stack the layers and find the kernel's symbol table (as
``vol`` does for our plugins), then hands the core a :class:`KernelSource`, the same
process source the ``callstacks.events``/``detect`` plugins use.

When the automagic fails, the responder gets a reason to act on, not a requirement path:
the file is not a memory image Volatility can read, or it is a Windows image whose kernel
symbol table is missing, in which case the kernel's PDB name, GUID and age are read from
the image's CodeView record and named, with where to put the table.
"""

from __future__ import annotations

import datetime as dt
import logging
import mmap
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import volatility3.plugins
import volatility3.symbols
from volatility3 import framework
from volatility3.framework import automagic, constants, contexts, exceptions, interfaces, plugins
from volatility3.framework.objects import utility

from callstack_forensics.analysis import OpenedProcess, SourceInfo
from callstack_forensics.memory import ProcessInfo

from . import adapter

vollog = logging.getLogger(__name__)

VolProgress = Callable[[float, str], None]
# CodeView RSDS record of a kernel: GUID (16 bytes), age (4), then the PDB name.
KERNEL_RSDS = re.compile(rb"RSDS(.{16})(.{4})((?:ntkrnlmp|ntoskrnl|ntkrnlpa|ntkrpamp)\.pdb)\x00", re.S)


class ImageOpenError(Exception):
    """The image cannot be analysed; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class KernelPdb:
    """The kernel's PDB identity, as Volatility names its symbol table files."""

    name: str
    guid: str
    age: int

    @property
    def identifier(self) -> str:
        return f"{self.guid}-{self.age:X}"

    @property
    def symbol_file(self) -> str:
        return f"windows/{self.name}/{self.identifier}.json.xz"


def find_kernel_pdb(path: Path) -> KernelPdb | None:
    """The first kernel CodeView record in the raw file (a physical image holds the kernel's
    headers in plain bytes), or None when there is none: then it is no Windows image."""
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            found = KERNEL_RSDS.search(data)
            groups = found.groups() if found is not None else None
    except (OSError, ValueError):
        return None
    if groups is None:
        return None
    raw_guid, raw_age, name = groups
    d1, d2, d3 = int.from_bytes(raw_guid[:4], "little"), int.from_bytes(raw_guid[4:6], "little"), int.from_bytes(raw_guid[6:8], "little")
    guid = f"{d1:08X}{d2:04X}{d3:04X}{raw_guid[8:].hex().upper()}"
    return KernelPdb(name.decode(), guid, int.from_bytes(raw_age, "little"))


@dataclass
class VolatilitySettings:
    """Where Volatility looks for symbols and caches, and whether it may download symbols."""

    symbols: list[Path] = field(default_factory=list)
    cache_dir: Path | None = None
    download_symbols: bool = False

    def apply(self) -> None:
        """Volatility keeps these as process-wide settings (its own CLI sets them the same way)."""
        framework.require_interface_version(2, 0, 0)
        extra = [str(p.resolve()) for p in self.symbols]
        volatility3.symbols.__path__ = extra + [p for p in constants.SYMBOL_BASEPATHS if p not in extra]
        plugin_dir = str(Path(__file__).resolve().parents[1])
        if plugin_dir not in volatility3.plugins.__path__:
            volatility3.plugins.__path__ = [plugin_dir] + list(volatility3.plugins.__path__)
        constants.OFFLINE = not self.download_symbols
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            constants.CACHE_PATH = str(self.cache_dir)
        framework.import_files(volatility3.plugins, True)


def open_image(path: Path, settings: VolatilitySettings, progress: VolProgress) -> "KernelSource":
    """Stack the image's layers and find its kernel, or raise :class:`ImageOpenError` saying why."""
    from .events import Events  # the plugin whose requirements name everything the sources need

    if not path.is_file():
        raise ImageOpenError(f"{path}: no such file")
    settings.apply()
    context = contexts.Context()
    context.config["automagic.LayerStacker.single_location"] = path.resolve().as_uri()
    chosen = automagic.choose_automagic(automagic.available(context), Events)
    try:
        plugin = plugins.construct_plugin(context, chosen, Events, "plugins", progress, None)
    except exceptions.UnsatisfiedException as exc:
        raise ImageOpenError(_why_unsatisfied(path, exc, settings)) from None
    return KernelSource(plugin.context, plugin.config["kernel"])


def _why_unsatisfied(path: Path, exc: exceptions.UnsatisfiedException, settings: VolatilitySettings) -> str:
    missing = " ".join(exc.unsatisfied)
    pdb = find_kernel_pdb(path)
    if pdb is None:
        return (f"{path}: not a Windows memory image Volatility can read (no layer format recognised and no "
                f"Windows kernel found in it); give a raw, crash-dump, hibernation, VMware or LiME image, "
                f"or a process minidump (.dmp)")
    if "symbol_table" in missing or "kernel" in missing:
        where = ", ".join(str(s) for s in settings.symbols) or "Volatility's own symbols folder"
        return (f"{path}: a Windows image whose kernel is {pdb.name} GUID-AGE {pdb.identifier}, but no symbol "
                f"table for it was found (looked in {where}). Make it with Volatility's pdbconv, from the PDB file "
                f"(`python -m volatility3.framework.symbols.windows.pdbconv -f {pdb.name} -o {pdb.identifier}.json.xz`) "
                f"or, where Microsoft's symbol server is reachable, from its id (`... pdbconv -p {pdb.name} "
                f"-g {pdb.guid}{pdb.age:X} -o {pdb.identifier}.json.xz`); save it as DIR/{pdb.symbol_file} and pass "
                f"--symbols DIR, or pass --download-symbols on a machine with internet access")
    return f"{path}: Volatility could not set up the image ({missing})"


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
