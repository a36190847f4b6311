"""What one analysis found: the source, every process with its stacks, the events, the findings.

These dataclasses are the one result every front end renders (rich tables, JSON, the HTML
case report), so each holds what a responder needs to act on without re-reading the image:
the frames a rule matched, the reason a process or thread could not be read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol

from ..memory import ProcessInfo, ProcessMemory
from ..engine.stack import ThreadStack

SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


@dataclass(slots=True)
class SourceInfo:
    """The file analysed, as the case report's header states it."""

    path: str
    size: int
    kind: str  # "memory image" or "minidump"
    sha256: str | None = None
    windows: str | None = None  # e.g. "Windows 10.0.19041 x64", when the source says
    details: dict[str, str] = field(default_factory=dict)  # kernel PDB, dump flavour, modules folder...

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "kind": self.kind, "sha256": self.sha256,
                "windows": self.windows, "details": dict(self.details)}


@dataclass(slots=True)
class OpenedProcess:
    """A process of the source: opened (``memory``) or only known by identity, with the reason."""

    info: ProcessInfo
    memory: ProcessMemory | None = None
    note: str | None = None


class Source(Protocol):
    """Where processes come from: a minidump (one process) or a memory image (all of them)."""

    info: SourceInfo

    def processes(self) -> Iterator[OpenedProcess]:
        """Every process, each opened or with a note saying why it could not be."""

    def observed_at(self) -> dt.datetime | None:
        """When the memory was captured, when the source records it."""


@dataclass(slots=True)
class ProcessResult:
    """One process: identity, rebuilt stacks (when walked) and what could not be read."""

    info: ProcessInfo
    stacks: list[ThreadStack] = field(default_factory=list)
    walked: bool = False
    note: str | None = None
    rwx_regions: int = 0
    executable_private_regions: int = 0

    @property
    def unbacked_frames(self) -> int:
        return sum(1 for s in self.stacks for f in s.frames if f.unbacked)

    @property
    def thread_notes(self) -> list[str]:
        """One line per distinct reason, with its threads: 25 kernel threads of System are one note."""
        by_note: dict[str, list[int]] = {}
        for stack in self.stacks:
            if stack.note:
                by_note.setdefault(stack.note, []).append(stack.tid)
        out = []
        for note, tids in by_note.items():
            shown = ", ".join(map(str, tids[:8])) + (f" and {len(tids) - 8} more" if len(tids) > 8 else "")
            out.append(f"TID {shown}: {note}" if len(tids) == 1 else f"{len(tids)} threads (TID {shown}): {note}")
        return out

    def to_json(self) -> dict[str, Any]:
        info = self.info
        return {
            "pid": info.pid, "ppid": info.ppid, "name": info.name, "path": info.path,
            "command_line": info.command_line, "create_time": _iso(info.create_time),
            "wow64": info.is_wow64, "walked": self.walked, "note": self.note,
            "threads": len(self.stacks), "unbacked_frames": self.unbacked_frames,
            "rwx_regions": self.rwx_regions, "executable_private_regions": self.executable_private_regions,
            "stacks": [s.to_json() for s in self.stacks],
        }


@dataclass(slots=True)
class MatchedFrame:
    """A frame that made a rule fire: the event field and index, and the thread it belongs to."""

    field: str  # e.g. "process.thread.Ext.call_stack"
    index: int
    pid: int | None
    tid: int | None
    symbol_info: str

    @property
    def owner(self) -> str:
        """Whose stack the frame is in, as the tables say it: "parent " for the creating thread's."""
        return "parent " if self.field.startswith("process.parent.") else ""

    def label(self) -> str:
        """The frame as every table prints it: ``#3 Unbacked``, ``parent #5 ntdll.dll!...``."""
        return f"{self.owner}#{self.index} {self.symbol_info}"

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "index": self.index, "pid": self.pid, "tid": self.tid,
                "symbol_info": self.symbol_info}


@dataclass(slots=True)
class Finding:
    """A rule that fired, with everything the case file needs to explain it."""

    rule_id: str
    rule_name: str
    severity: str
    description: str
    query: str
    pid: int | None
    process: str | None
    tid: int | None
    event_actions: list[str] = field(default_factory=list)
    frames: list[MatchedFrame] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    techniques: list[str] = field(default_factory=list)  # MITRE ATT&CK, from the rule's [[threat]]
    # how many threads and processes of the image share the finding's thread's stack shape
    prevalence: dict[str, Any] | None = None

    @property
    def prevalence_text(self) -> str | None:
        """``unique in the image`` or ``shared by 12 threads in 5 processes``."""
        if not self.prevalence:
            return None
        if self.prevalence.get("unique"):
            return "its stack is unique in the image"
        return f"its stack is shared by {self.prevalence['threads']} threads in {self.prevalence['processes']} processes"

    @property
    def severity_rank(self) -> int:
        return SEVERITY_ORDER.get(self.severity.lower(), len(SEVERITY_ORDER))

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": {"id": self.rule_id, "name": self.rule_name, "severity": self.severity,
                     "description": self.description, "query": self.query, "techniques": self.techniques},
            "pid": self.pid, "process": self.process, "tid": self.tid, "events": self.event_actions,
            "frames": [f.to_json() for f in self.frames], "evidence": self.evidence,
            "stack_prevalence": self.prevalence,
        }


@dataclass(slots=True)
class RuleInfo:
    id: str
    name: str
    severity: str
    path: str


@dataclass(slots=True)
class Analysis:
    """Everything one run produced; ``notes`` lists what could not be read (the run went on)."""

    source: SourceInfo
    tool_version: str
    started: dt.datetime
    finished: dt.datetime | None = None
    observed_at: dt.datetime | None = None
    rule_dirs: list[str] = field(default_factory=list)
    rules: list[RuleInfo] = field(default_factory=list)
    rule_errors: list[str] = field(default_factory=list)
    processes: list[ProcessResult] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def threads(self) -> int:
        return sum(len(p.stacks) for p in self.processes)

    def walked(self) -> list[ProcessResult]:
        return [p for p in self.processes if p.walked]

    def process(self, pid: int | None) -> ProcessResult | None:
        return next((p for p in self.processes if p.info.pid == pid), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source.to_json(),
            "tool": {"name": "callstack-forensics", "version": self.tool_version},
            "started": _iso(self.started), "finished": _iso(self.finished), "observed_at": _iso(self.observed_at),
            "rules": {"dirs": self.rule_dirs, "loaded": [vars_of(r) for r in self.rules],
                      "errors": self.rule_errors},
            "findings": [f.to_json() for f in self.findings],
            "processes": [p.to_json() for p in self.processes],
            "notes": self.notes,
        }


def vars_of(rule: RuleInfo) -> dict[str, str]:
    return {"id": rule.id, "name": rule.name, "severity": rule.severity, "path": rule.path}


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
