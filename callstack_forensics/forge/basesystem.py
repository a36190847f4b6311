"""The base system a scenario sits on: the processes every booted Windows runs.

A scenario names the processes its story needs; a real machine also runs a kernel, a boot chain,
service hosts and a shell, and readers judge an image by that (MemProcFS refuses a process list of
ten or fewer). So every scenario is merged with a base system file (``samples/scenarios/base/``,
``windows10`` unless ``[system] base`` names another, or ``"none"``): a scenario process with a
base process's pid replaces it, and the base's other processes follow the scenario's own, in
their order. A base thread whose id the scenario also uses is an error that names both.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from ..resources import base_systems_dir

DEFAULT_BASE = "windows10"
NO_BASE = "none"


def default_base_dir() -> Path:
    """Where base systems live: ``$CALLSTACK_FORGE_BASES``, else ``samples/scenarios/base`` of this
    checkout, or the copy an installed package carries."""
    env = os.environ.get("CALLSTACK_FORGE_BASES")
    if env:
        return Path(env)
    return base_systems_dir()


def base_path(name: str, scenario_path: Path) -> Path | None:
    """The base file ``name`` names: beside the scenario in ``base/`` first, else the shipped ones."""
    for folder in (scenario_path.parent / "base", default_base_dir()):
        candidate = folder / f"{name}.toml"
        if candidate.is_file():
            return candidate
    return None


def merge(scenario_processes: tuple, base_processes: tuple, base_name: str) -> tuple:
    """The scenario's processes, then the base's whose pid the scenario does not use."""
    own = {p.pid for p in scenario_processes}
    added = tuple(_from_base(p, base_name) for p in base_processes if p.pid not in own)
    return tuple(scenario_processes) + added


def _from_base(process, base_name: str):
    """A base process whose messages say it comes from the base file (``base windows10: process[2]``)."""
    tag = f"base {base_name}: "
    threads = tuple(replace(t, where=tag + t.where) for t in process.threads)
    return replace(process, where=tag + process.where, threads=threads)
