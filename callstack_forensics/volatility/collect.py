"""The events of an image for ``callstacks.events`` / ``detect``: the core's analysis over the
plugin's context, with Volatility's progress callback.

Every process is opened for its identity (parents, children and lineage need all of
them); only the selected processes (``--pid``) and their ancestors are walked, since an
ancestor's creating thread is what a selected process's ``process.parent.thread`` comes
from. A process that cannot be opened is still listed, with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from volatility3.framework import interfaces

from ..analysis import AnalysisOptions, analyze
from ..engine.context import WalkOptions
from ..rules import rule_folders
from ..yara_scan import YaraScanner, default_yara_dir

from .requirements import walk_options
from .source import KernelSource

vollog = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


@dataclass
class Collected:
    """The events of the selected processes, and which pids those are (None: all)."""

    events: list[dict[str, Any]]
    selected: set[int] | None
    notes: list[str]


class VolatilityProgress:
    """The core's stage progress as Volatility's one-line percentage callback."""

    def __init__(self, callback: Progress) -> None:
        self.callback = callback
        self.totals: dict[str, int | None] = {}

    def stage(self, name: str, total: int | None) -> None:
        self.totals[name] = total
        self.callback(0.0, f"{name}...")

    def advance(self, name: str, done: int, detail: str = "") -> None:
        total = self.totals.get(name)
        self.callback(100.0 * done / total if total else 0.0, f"{name}: {detail}")

    def finish(self, name: str, summary: str = "") -> None:
        self.callback(100.0, f"{name}: {summary}")


def collect_events(context: interfaces.context.ContextInterface, kernel: str, pids: list[int] | None,
                   progress: Progress, max_frames: int = 256, yara: bool = True,
                   with_ancestors: bool = False, max_stack_bytes: int | None = None) -> Collected:
    """Events of the selected processes (all without ``pids``); ``with_ancestors`` adds the events of
    their ancestors, which lineage rules (``descendant of``) need to see."""
    walk = WalkOptions(max_frames=max_frames)
    if max_stack_bytes:
        walk = WalkOptions(max_frames=max_frames, max_stack_bytes=max_stack_bytes)
    scanner = YaraScanner.from_dirs([default_yara_dir()]) if yara else None
    options = AnalysisOptions(walk=walk, yara=scanner, pids=set(pids) if pids else None,
                              emit_ancestors=with_ancestors)
    result = analyze(KernelSource(context, kernel), options, VolatilityProgress(progress))
    notes = list(scanner.errors) if scanner is not None else []
    return Collected(result.events, options.pids, notes)


def plugin_events(plugin: interfaces.plugins.PluginInterface, with_ancestors: bool = False) -> Collected:
    """The events for a callstacks plugin, from its configuration (``--pid``, limits, ``--no-yara``);
    what could not be read is logged as Volatility's plugins log it."""
    config = plugin.config
    walk = walk_options(config)
    collected = collect_events(plugin.context, config["kernel"], config.get("pid"), plugin._progress_callback,
                               walk.max_frames, yara=not config.get("no-yara"), with_ancestors=with_ancestors,
                               max_stack_bytes=walk.max_stack_bytes)
    for note in collected.notes:
        vollog.warning("%s", note)
    return collected


def rule_dirs(given: list[str] | None, argv: list[str], default: Path) -> list[Path]:
    """The rule folders: the shipped ones, plus every ``--rules`` folder.

    Volatility's command line keeps only the last occurrence of a list option, so
    ``--rules A --rules B`` would silently drop A; the folders after every ``--rules`` in the
    command line are read too (``--rules A B`` works either way).
    """
    extra = list(given or [])
    if any(arg.endswith("callstacks.detect") or arg.endswith("detect.Detect") for arg in argv):
        extra += _repeated_option(argv, "--rules")
    return rule_folders(default, [Path(item) for item in extra])


def _repeated_option(argv: list[str], option: str) -> list[str]:
    values: list[str] = []
    collecting = False
    for arg in argv:
        if arg.startswith(option + "="):
            values.append(arg.split("=", 1)[1])
            collecting = False
        elif arg == option:
            collecting = True
        elif arg.startswith("-"):
            collecting = False
        elif collecting:
            values.append(arg)
    return values
