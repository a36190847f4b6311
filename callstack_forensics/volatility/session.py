"""Volatility as a library: open a memory image in-process and serve its processes to the core.

``callstack-forensics analyze IMAGE`` must not shell out to ``vol``: it builds a Volatility
context here, lets the automagic stack the layers and find the kernel's symbol table (as
``vol`` does for our plugins, with the same requirements), then hands the core a
:class:`KernelSource`, the same process source the ``callstacks.events``/``detect`` plugins use.
No plugin class is involved, so an installed copy opens images without Volatility's plugin
path knowing our plugins.

When the automagic fails, the responder gets a reason to act on, not a requirement path:
the file is not a memory image Volatility can read, or it is a Windows image whose kernel
symbol table is missing, in which case the kernel's PDB name, GUID and age are read from
the image's CodeView record and named, with where to put the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import volatility3.symbols
from volatility3 import framework
from volatility3.framework import automagic, constants, contexts, interfaces

from .kernelpdb import find_kernel_pdb
from .requirements import event_requirements
from .source import KernelSource

VolProgress = Callable[[float, str], None]
CONFIG_PATH = "plugins"


class ImageOpenError(Exception):
    """The image cannot be analysed; the message says why and what to do."""


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
        constants.OFFLINE = not self.download_symbols
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            constants.CACHE_PATH = str(self.cache_dir)


class KernelRequirements(interfaces.configuration.ConfigurableInterface):
    """What the automagic must satisfy for an analysis: the events plugins' requirements.

    A configurable rather than a plugin class, so it never shows in ``vol``'s plugin list."""

    @classmethod
    def get_requirements(cls) -> list[interfaces.configuration.RequirementInterface]:
        return event_requirements()


def windows_automagics(context: interfaces.context.ContextInterface) -> list[interfaces.automagic.AutomagicInterface]:
    """The automagics ``vol`` runs for a windows plugin (the Linux and Mac ones excluded)."""
    return [magic for magic in automagic.available(context) if "windows" not in magic.exclusion_list]


def open_image(path: Path, settings: VolatilitySettings, progress: VolProgress) -> KernelSource:
    """Stack the image's layers and find its kernel, or raise :class:`ImageOpenError` saying why."""
    if not path.is_file():
        raise ImageOpenError(f"{path}: no such file")
    settings.apply()
    context = contexts.Context()
    context.config["automagic.LayerStacker.single_location"] = path.resolve().as_uri()
    automagic.run(windows_automagics(context), context, KernelRequirements, CONFIG_PATH, progress_callback=progress)
    config_path = interfaces.configuration.path_join(CONFIG_PATH, KernelRequirements.__name__)
    unsatisfied = KernelRequirements.unsatisfied(context, config_path)
    if unsatisfied:
        raise ImageOpenError(_why_unsatisfied(path, " ".join(unsatisfied), settings))
    kernel = context.config[interfaces.configuration.path_join(config_path, "kernel")]
    return KernelSource(context, kernel)


def _why_unsatisfied(path: Path, missing: str, settings: VolatilitySettings) -> str:
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
