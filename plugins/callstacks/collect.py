"""Open an image's processes for the event builder: the Volatility half of ``callstacks.events`` / ``detect``.

Every process is opened for its identity (parents, children and lineage need all of
them); only the selected processes (``--pid``) and their ancestors are walked, since an
ancestor's creating thread is what a selected process's ``process.parent.thread`` comes
from. A process that cannot be opened is still listed, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from volatility3.framework import interfaces
from volatility3.framework.objects import utility

from callstack_forensics.context import WalkOptions
from callstack_forensics.events.model import ProcessView
from callstack_forensics.events.pipeline import EventPipeline
from callstack_forensics.memory import ProcessInfo
from callstack_forensics.yara_scan import YaraScanner, default_yara_dir

from . import adapter

Progress = Callable[[float, str], None]


@dataclass
class Collected:
    """The events of the selected processes, and which pids those are (None: all)."""

    events: list[dict[str, Any]]
    selected: set[int] | None
    notes: list[str]


def collect_events(context: interfaces.context.ContextInterface, kernel: str, pids: list[int] | None,
                   progress: Progress, max_frames: int = 256, yara: bool = True,
                   with_ancestors: bool = False) -> Collected:
    """Events of the selected processes (all without ``pids``); ``with_ancestors`` adds the events of
    their ancestors, which lineage rules (``descendant of``) need to see."""
    procs = list(adapter.list_processes(context, kernel))
    types = _object_types(context, kernel)
    scanner = YaraScanner.from_dirs([default_yara_dir()]) if yara else None
    pipeline = EventPipeline(WalkOptions(max_frames=max_frames), yara=scanner)
    opened = [_open(context, kernel, proc, types) for proc in procs]
    infos = {o[0].pid: o[0] for o in opened}
    selected = set(pids) if pids else None
    walk = _with_ancestors(selected, infos) if selected is not None else set(infos)
    views: list[ProcessView] = []
    for number, (info, memory, note) in enumerate(opened):
        progress(100.0 * number / max(len(opened), 1), f"Building events of process {info.pid}")
        if memory is not None and info.pid in walk:
            views.append(pipeline.view(memory, note or _adapter_note(memory)))
        else:
            views.append(EventPipeline.identity_only(info, note))
    emit = walk if with_ancestors and selected is not None else selected
    events = pipeline.events(views, adapter.system_time(context, kernel), emit)
    notes = list(scanner.errors) if scanner is not None else []
    return Collected(events, selected, notes)


def _object_types(context: interfaces.context.ContextInterface, kernel: str) -> adapter.ObjectTypes | None:
    try:
        return adapter.ObjectTypes.read(context, kernel)
    except Exception:  # no type map: handles stay unresolved, events lose those fields only
        return None


def _open(context: interfaces.context.ContextInterface, kernel: str, proc: Any,
          types: adapter.ObjectTypes | None) -> tuple[ProcessInfo, adapter.VolatilityProcess | None, str | None]:
    memory = adapter.open_process(context, kernel, proc, types)
    if isinstance(memory, str):
        return _bare_info(proc), None, memory
    return memory.process, memory, None


def _bare_info(proc: Any) -> ProcessInfo:
    """What the _EPROCESS alone says when its address space cannot be opened."""
    try:
        name = utility.array_to_string(proc.ImageFileName)
        return ProcessInfo(int(proc.UniqueProcessId), name, ppid=int(proc.InheritedFromUniqueProcessId),
                           object_address=int(proc.vol.offset))
    except Exception:
        return ProcessInfo(-1, "unreadable", object_address=int(proc.vol.offset))


def _adapter_note(memory: adapter.VolatilityProcess) -> str | None:
    return "; ".join(memory.notes) or None


def _with_ancestors(selected: set[int], infos: dict[int, ProcessInfo]) -> set[int]:
    out = set()
    for pid in selected:
        seen = set()
        while pid in infos and pid not in seen:
            seen.add(pid)
            out.add(pid)
            pid = infos[pid].ppid if infos[pid].ppid is not None else -1
    return out


def rule_dirs(given: list[str] | None, argv: list[str], default: Path) -> list[Path]:
    """The rule folders: the shipped ones, plus every ``--rules`` folder.

    Volatility's command line keeps only the last occurrence of a list option, so
    ``--rules A --rules B`` would silently drop A; the folders after every ``--rules`` in the
    command line are read too (``--rules A B`` works either way).
    """
    extra = list(given or [])
    if any(arg.endswith("callstacks.detect") or arg.endswith("detect.Detect") for arg in argv):
        extra += _repeated_option(argv, "--rules")
    out = [default]
    for item in extra:
        path = Path(item)
        if path not in out:
            out.append(path)
    return out


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
