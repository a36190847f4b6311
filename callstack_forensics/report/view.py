"""The case report's view model: an :class:`Analysis` turned into what the template draws.

The template only loops and prints: every decision (which stacks a finding shows, which frame
is highlighted, the layer of each frame, the process tree) is made here, in plain Python that
tests can check without parsing HTML. Every string stays a plain ``str``: escaping is the
template's job (autoescape), so nothing here may pre-format markup.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

from ..analysis import Analysis, Finding, ProcessResult
from ..eql.fields import lookup
from ..engine.stack import ThreadStack
from ..engine.summary import summary_string
from .layers import FrameClass, Layer, classify_stack

BYTES_PER_LINE = 16
PARENT_PREFIX = "process.parent."


@dataclass(frozen=True, slots=True)
class FrameView:
    """One row of a stack table."""

    index: int
    address: str
    symbol_info: str  # names the module by its full path, as Elastic does
    region: str
    protection: str
    method: str
    trust: str  # high / medium / low: how sure the engine is the frame is real
    call: str  # "-" on frame 0, "yes" or "NO" (return address not after a call)
    call_instruction: str
    note: str
    style: FrameClass
    matched: bool
    leading: tuple[str, ...]  # call-site bytes before the address, hex, BYTES_PER_LINE per line
    trailing: tuple[str, ...]

    @property
    def css(self) -> str:
        """CSS classes: the layer, then the flags that must stand out."""
        names = ["frame", self.style.layer.value]
        names += [name for name, on in (("unbacked", self.style.unbacked), ("rwx", self.style.rwx),
                                        ("matched", self.matched), ("unverified", self.call == "NO")) if on]
        return " ".join(names)

    @property
    def layer_label(self) -> str:
        return self.style.layer.label


@dataclass(frozen=True, slots=True)
class StackView:
    """A thread's stack as the report shows it, with its anchor in the process tree."""

    pid: int
    tid: int
    process_name: str
    anchor: str
    frames: tuple[FrameView, ...]
    summary: str
    stop_reason: str
    note: str
    wow64: bool
    unbacked: int
    rwx: int
    # a crash dump's faulting thread: its stack at the exception (the dump's exception
    # context), shown before where the thread is now, and what the exception was
    exception: "StackView | None" = None
    exception_label: str = ""
    integrity: tuple[str, ...] = ()  # the checks the stack's verdict failed (empty: clean)


@dataclass(frozen=True, slots=True)
class FindingStack:
    """A stack shown under a finding: why it is there, and the stack (or why it is missing)."""

    label: str
    pid: int | None
    tid: int | None
    stack: StackView | None
    missing: str = ""


@dataclass(frozen=True, slots=True)
class EventLine:
    timestamp: str
    category: str
    action: str
    pid: str
    process: str
    tid: str


@dataclass(frozen=True, slots=True)
class FindingView:
    finding: Finding
    anchor: str
    stacks: tuple[FindingStack, ...]
    events: tuple[EventLine, ...]
    evidence_json: str
    events_json: str

    @property
    def severity(self) -> str:
        return self.finding.severity.lower()


@dataclass(frozen=True, slots=True)
class ProcessView:
    """A process in the tree: its depth (indent), its stacks and what is odd about it."""

    result: ProcessResult
    depth: int
    anchor: str
    stacks: tuple[StackView, ...]
    findings: int
    children: int
    orphan: bool  # its parent is not in the image (exited, or never listed)

    @property
    def suspicious(self) -> bool:
        return bool(self.findings or self.result.unbacked_frames or self.result.rwx_regions
                    or any(s.rwx for s in self.stacks))


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """One rule in one process: how often it fired there, and where its first card is."""

    severity: str
    rule: str
    techniques: tuple[str, ...]
    process: str
    pid: int | None
    count: int
    anchor: str


@dataclass(frozen=True, slots=True)
class ReportView:
    analysis: Analysis
    findings: tuple[FindingView, ...]
    processes: tuple[ProcessView, ...]
    severity_counts: tuple[tuple[str, int], ...]
    layers: tuple[Layer, ...] = field(default=tuple(Layer))
    summary: tuple[SummaryRow, ...] = ()

    @property
    def duration(self) -> str:
        if self.analysis.finished is None:
            return "not finished"
        return f"{(self.analysis.finished - self.analysis.started).total_seconds():.1f} s"


def build_view(analysis: Analysis) -> ReportView:
    """Everything the template needs, decided once."""
    highlights = _highlights(analysis.findings)
    anchors = _StackAnchors()
    per_process = [tuple(stack_view(s, anchors.for_stack(s), highlights.get((p.info.pid, s.tid), set()))
                         for s in p.stacks) for p in analysis.processes]
    threads: dict[tuple[int, int], tuple[ThreadStack, str]] = {}
    for proc, views in zip(analysis.processes, per_process):
        for stack, view in zip(proc.stacks, views):
            threads.setdefault((proc.info.pid, stack.tid), (stack, view.anchor))
    findings = tuple(_finding_view(f, n, analysis, threads) for n, f in enumerate(analysis.findings))
    per_pid: dict[int | None, int] = {}
    for finding in analysis.findings:
        per_pid[finding.pid] = per_pid.get(finding.pid, 0) + 1
    processes = tuple(
        ProcessView(analysis.processes[node.index], node.depth, f"p{number}", per_process[node.index],
                    per_pid.get(analysis.processes[node.index].info.pid, 0), node.children, node.orphan)
        for number, node in enumerate(process_tree(analysis.processes)))
    counts: dict[str, int] = {}
    for finding in analysis.findings:
        counts[finding.severity.lower()] = counts.get(finding.severity.lower(), 0) + 1
    return ReportView(analysis, findings, processes, tuple(counts.items()), summary=findings_summary(findings))


def findings_summary(findings: Sequence[FindingView]) -> tuple[SummaryRow, ...]:
    """The findings by rule and process, most severe first: what the first screen must say
    before 16 cards repeat the same description and query."""
    rows: dict[tuple[str, int | None], SummaryRow] = {}
    for view in findings:
        f = view.finding
        key = (f.rule_id, f.pid)
        if key in rows:
            rows[key] = replace(rows[key], count=rows[key].count + 1)
        else:
            rows[key] = SummaryRow(f.severity.lower(), f.rule_name, tuple(f.techniques), f.process or "-", f.pid, 1,
                                   view.anchor)
    return tuple(rows.values())  # the findings come sorted by severity, then rule


def stack_view(stack: ThreadStack, anchor: str, matched: set[int]) -> StackView:
    styles = classify_stack(stack.frames)
    frames = tuple(
        FrameView(
            index=f.index, address=f"{f.address:#x}", symbol_info=f.symbol_info, region=f.region_kind,
            protection=f.protection, method=f.method.value, trust=f.trust.value,
            call="-" if f.call_verified is None else ("yes" if f.call_verified else "NO"),
            call_instruction=f.call_instruction or "", note=f.note or "", style=style, matched=f.index in matched,
            leading=hex_lines(f.callsite_leading_bytes), trailing=hex_lines(f.callsite_trailing_bytes))
        for f, style in zip(stack.frames, styles))
    exception, label = None, ""
    if stack.exception is not None:
        exc = stack.exception
        at_fault = ThreadStack(stack.pid, stack.tid, stack.process_name, exc.frames, exc.stop_reason, exc.note,
                               stack.is_wow64)
        exception, label = stack_view(at_fault, f"{anchor}-exception", set()), exc.description
    return StackView(stack.pid, stack.tid, stack.process_name, anchor, frames, summary_string(stack.frames),
                     stack.stop_reason.value if stack.stop_reason else "", stack.note or "", stack.is_wow64,
                     sum(1 for s in styles if s.unbacked), sum(1 for s in styles if s.rwx), exception, label,
                     tuple(sorted({f.check for f in stack.integrity})))


def hex_lines(text: str) -> tuple[str, ...]:
    """``"4c8bd1b8..."`` -> ``("4c 8b d1 b8 ...", ...)``, 16 bytes a line; anything not hex is kept as is."""
    compact = "".join(text.split())
    if not compact:
        return ()
    if len(compact) % 2 or any(c not in "0123456789abcdefABCDEF" for c in compact):
        return (text,)
    pairs = [compact[i:i + 2] for i in range(0, len(compact), 2)]
    return tuple(" ".join(pairs[i:i + BYTES_PER_LINE]) for i in range(0, len(pairs), BYTES_PER_LINE))


@dataclass(frozen=True, slots=True)
class TreeNode:
    """A place in the process tree: which process (index into the list), how deep, how many children."""

    index: int
    depth: int
    children: int
    orphan: bool  # a root whose parent PID is not in the list (exited, or never listed)


def process_tree(processes: Sequence[ProcessResult]) -> list[TreeNode]:
    """Every process exactly once, in tree order: each parent before its children.

    Processes whose parent is not in the list are roots (Windows keeps a child whose parent
    exited). PIDs are reused and an image can be crafted, so parent links may form cycles or
    name a PID twice: a cycle is cut where the walk meets a process it has already placed (the
    first process of the cycle in list order becomes a root), and a child listed under two
    parents with the same PID is placed once. The walk is iterative: a crafted chain of
    thousands of processes cannot exhaust the recursion limit.
    """
    pids = {p.info.pid for p in processes}
    children: dict[int, list[int]] = {}
    roots: list[int] = []
    for i, proc in enumerate(processes):
        ppid = proc.info.ppid
        if ppid is None or ppid == proc.info.pid or ppid not in pids:
            roots.append(i)
        else:
            children.setdefault(ppid, []).append(i)
    out: list[TreeNode] = []
    placed: set[int] = set()
    for start in [*roots, *range(len(processes))]:
        if start in placed:
            continue
        todo = [(start, 0)]
        while todo:
            i, depth = todo.pop()
            if i in placed:
                continue
            placed.add(i)
            proc = processes[i]
            kids = [k for k in children.get(proc.info.pid, []) if k not in placed]
            orphan = depth == 0 and proc.info.ppid not in pids and proc.info.ppid not in (None, 0)
            out.append(TreeNode(i, depth, len(kids), orphan))
            todo.extend((k, depth + 1) for k in reversed(kids))
    return out


def _highlights(findings: Iterable[Finding]) -> dict[tuple[int, int], set[int]]:
    """(pid, tid) -> the frame indexes some rule matched."""
    out: dict[tuple[int, int], set[int]] = {}
    for finding in findings:
        for frame in finding.frames:
            if frame.pid is not None and frame.tid is not None:
                out.setdefault((frame.pid, frame.tid), set()).add(frame.index)
    return out


def _finding_view(finding: Finding, number: int, analysis: Analysis,
                  threads: dict[tuple[int, int], tuple[ThreadStack, str]]) -> FindingView:
    return FindingView(finding, f"f{number}", tuple(_finding_stacks(finding, analysis, threads)),
                       tuple(_event_line(e) for e in finding.events),
                       json.dumps(finding.evidence, indent=2, sort_keys=True, default=str),
                       json.dumps(finding.events, indent=2, sort_keys=True, default=str))


def _finding_stacks(finding: Finding, analysis: Analysis,
                    threads: dict[tuple[int, int], tuple[ThreadStack, str]]) -> list[FindingStack]:
    """The threads a finding is about: those of its matched frames, its own thread, and, when
    neither is known, the parent's creating thread its event names (a process rule's context).

    Each is drawn with this finding's own matched frames highlighted (the process tree shows
    every rule's), so a reader sees exactly what made this rule fire."""
    own = _highlights([finding])
    wanted: list[tuple[str, int | None, int | None]] = []
    for frame in finding.frames:
        parent = frame.field.startswith(PARENT_PREFIX)
        wanted.append(("creating thread, in the parent" if parent else "thread", frame.pid, frame.tid))
    if finding.tid is not None:
        wanted.append(("thread", finding.pid, finding.tid))
    if not wanted:
        for event in finding.events:
            pid, tid = _get(event, "process.parent.pid"), _get(event, "process.parent.thread.id")
            if isinstance(pid, int) and isinstance(tid, int):
                wanted.append(("creating thread, in the parent", pid, tid))
                break
    out: list[FindingStack] = []
    seen: set[tuple[int | None, int | None]] = set()
    for label, pid, tid in wanted:
        if (pid, tid) in seen:
            continue
        seen.add((pid, tid))
        found = threads.get((pid, tid)) if pid is not None and tid is not None else None
        if found is None:
            out.append(FindingStack(label, pid, tid, None, _why_missing(analysis, pid, tid)))
            continue
        stack, anchor = found
        out.append(FindingStack(label, pid, tid, stack_view(stack, anchor, own.get((pid, tid), set()))))
    return out


def _why_missing(analysis: Analysis, pid: int | None, tid: int | None) -> str:
    if pid is None or tid is None:
        return "the event does not say which thread"
    proc = analysis.process(pid)
    if proc is None:
        return f"PID {pid} is not in this analysis"
    if not proc.walked:
        return f"PID {pid}'s threads were not walked" + (f" ({proc.note})" if proc.note else "")
    return f"TID {tid} is not among PID {pid}'s threads"


def _event_line(event: dict[str, Any]) -> EventLine:
    def text(path: str) -> str:
        value = _get(event, path)
        if value is None:
            return "-"
        if isinstance(value, list):
            return ", ".join(map(str, value))
        return str(value)

    return EventLine(text("@timestamp"), text("event.category"), text("event.action"), text("process.pid"),
                     text("process.name"), text("process.thread.id"))


def _get(event: dict[str, Any], path: str) -> Any:
    try:
        return lookup(event, (path,))
    except Exception:  # an odd event shape is shown as "-", never a failed report
        return None


class _StackAnchors:
    """Unique HTML ids for stacks: (pid, tid) can repeat in an image (reused ids, crafted lists)."""

    def __init__(self) -> None:
        self._used: dict[str, int] = {}

    def for_stack(self, stack: ThreadStack) -> str:
        base = f"t{stack.pid}-{stack.tid}"
        count = self._used.get(base, 0)
        self._used[base] = count + 1
        return base if count == 0 else f"{base}-{count}"


def iso(value: dt.datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"
