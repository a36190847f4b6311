"""The event builder's inputs: what an image shows, per process, and when it was taken."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from ..engine.context import ProcessContext
from ..hostfiles import HostFiles
from ..memory import ProcessInfo
from ..engine.stack import ThreadStack
from ..yara_scan import ProcessYara


@dataclass(slots=True)
class ProcessView:
    """One process: its identity, and (when it was opened and walked) its memory and stacks.

    A view with no ``context`` still serves as a parent or ancestor (name, path, times);
    ``note`` says why a process could not be read, and its event carries it.
    """

    info: ProcessInfo
    context: ProcessContext | None = None
    stacks: list[ThreadStack] = field(default_factory=list)
    yara: ProcessYara | None = None
    note: str | None = None
    # CONTEXT records of sleep obfuscation found in the process's private memory (hunt.contexts)
    context_records: list[Any] = field(default_factory=list)


@dataclass(slots=True)
class Snapshot:
    """Every process of an image (for parents, children and lineage), and the capture time.

    ``emit`` limits which processes get events (``--pid``); the others are context only.
    """

    processes: list[ProcessView]
    observed_at: dt.datetime | None = None
    emit: set[int] | None = None
    files: HostFiles | None = None  # the host's files (--files): hashes, PE details, signatures

    def emitted(self, view: ProcessView) -> bool:
        return self.emit is None or view.info.pid in self.emit
