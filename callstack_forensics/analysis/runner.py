"""One pass over a source: open the processes, walk the stacks, build the events, run the rules.

The order matters for lineage: every process is opened for its identity (parents,
children and ``descendant of`` need them all), but only the selected processes and their
ancestors are walked, since an ancestor's creating thread is what a selected process's
``process.parent.thread`` comes from. Nothing here stops the run for one bad process or
thread: each becomes a note in :attr:`Analysis.notes` and in its own result.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import __version__
from ..engine.context import WalkOptions
from ..events.detections import matches_for_pids
from ..events.model import ProcessView
from ..events.pipeline import EventPipeline
from ..hostfiles import HostFiles
from ..hostfiles.memory import with_module_files
from ..memory import ProcessInfo, RegionKind
from ..rules import RuleSet
from ..wording import plural
from ..yara_scan import YaraScanner
from .collector import paced_collector
from .findings import finding_from_match
from .model import Analysis, OpenedProcess, ProcessResult, RuleInfo, Source
from .progress import NullProgress, Progress

STAGE_OPEN = "processes"
STAGE_STACKS = "threads"
STAGE_EVENTS = "events"
STAGE_RULES = "rules"


@dataclass(slots=True)
class AnalysisOptions:
    """What to analyse and how: the walk limits, the rules, YARA, and which processes."""

    walk: WalkOptions = field(default_factory=WalkOptions)
    ruleset: RuleSet | None = None
    rule_dirs: list[Path] = field(default_factory=list)
    yara: YaraScanner | None = None
    pids: set[int] | None = None
    tids: set[int] | None = None
    # With ``pids``, also emit the events of their ancestors: lineage rules need them, an
    # export of "this process's events" does not.
    emit_ancestors: bool = True
    # The host's files (--files): module pages the image lacks, hashes, PE details, signatures.
    files: HostFiles | None = None
    # Called with every process as soon as the list is known, before any stack is walked: a
    # front end checks its filters there (a --pid that matches nothing must not first cost the
    # walk) and starts the slow work of its own that is worth doing only once they pass.
    on_listed: Callable[[list[OpenedProcess]], None] | None = None


def analyze(source: Source, options: AnalysisOptions, progress: Progress | None = None) -> Analysis:
    """The whole job on ``source``; a bad process or thread becomes a note, never an exception."""
    with paced_collector():
        return _analyze(source, options, progress or NullProgress())


def _analyze(source: Source, options: AnalysisOptions, progress: Progress) -> Analysis:
    result = Analysis(source.info, __version__, dt.datetime.now(dt.timezone.utc),
                      rule_dirs=[str(d) for d in options.rule_dirs])
    opened = _open_all(source, progress)
    if options.on_listed is not None:
        options.on_listed(opened)
    result.observed_at = _observed_at(source, result)
    infos = {o.info.pid: o.info for o in opened}
    walk = _walk_set(options.pids, infos)
    unknown = sorted((options.pids or set()) - set(infos))
    if unknown:
        result.notes.append("no process with PID " + ", ".join(map(str, unknown)) + " in the source")
    pipeline = EventPipeline(options.walk, yara=options.yara)
    if options.files is not None:
        opened = [with_module_files(o, options.files) for o in opened]
    views = _walk_all(pipeline, opened, walk, options.tids, progress)
    result.processes = [_process_result(o, v, o.info.pid in walk) for o, v in zip(opened, views)]
    result.notes += _notes(result.processes) + (list(options.yara.errors) if options.yara else [])
    progress.stage(STAGE_EVENTS, None)
    emit = (walk if options.emit_ancestors else set(options.pids)) if options.pids else None
    result.events = pipeline.events(views, result.observed_at, emit, options.files)
    if options.files is not None:
        result.notes += list(dict.fromkeys(options.files.notes))
    progress.finish(STAGE_EVENTS, plural(len(result.events), "event"))
    if options.ruleset is not None:
        _run_rules(options.ruleset, options.pids, result, progress)
    result.finished = dt.datetime.now(dt.timezone.utc)
    return result


def _open_all(source: Source, progress: Progress) -> list[OpenedProcess]:
    progress.stage(STAGE_OPEN, None)
    opened: list[OpenedProcess] = []
    for item in source.processes():
        opened.append(item)
        progress.advance(STAGE_OPEN, len(opened), f"PID {item.info.pid} {item.info.name}")
    unread = sum(1 for o in opened if o.memory is None)
    progress.finish(STAGE_OPEN, plural(len(opened), "process") + (f", {unread} not readable" if unread else ""))
    return opened


def _observed_at(source: Source, result: Analysis) -> dt.datetime | None:
    try:
        return source.observed_at()
    except Exception as exc:  # a capture time is context, not worth the run
        result.notes.append(f"capture time not read ({exc})")
        return None


def _walk_set(pids: set[int] | None, infos: dict[int, ProcessInfo]) -> set[int]:
    """The selected pids and all their ancestors (every pid without a selection)."""
    if not pids:
        return set(infos)
    out: set[int] = set()
    for pid in pids:
        seen: set[int] = set()
        while pid in infos and pid not in seen:  # PIDs are reused: parent chains can loop
            seen.add(pid)
            out.add(pid)
            parent = infos[pid].ppid
            pid = parent if parent is not None else -1
    return out


def _walk_all(pipeline: EventPipeline, opened: list[OpenedProcess], walk: set[int], tids: set[int] | None,
              progress: Progress) -> list[ProcessView]:
    todo = [o for o in opened if o.memory is not None and o.info.pid in walk]
    progress.stage(STAGE_STACKS, len(todo))
    views, threads, done = [], 0, 0
    for item in opened:
        if item.memory is None or item.info.pid not in walk:
            views.append(EventPipeline.identity_only(item.info, item.note))
            continue
        progress.advance(STAGE_STACKS, done, f"PID {item.info.pid} {item.info.name}")
        view = pipeline.view(item.memory, item.note or None, tids)
        views.append(view)
        threads += len(view.stacks)
        done += 1
        progress.advance(STAGE_STACKS, done, plural(threads, "thread"))
    progress.finish(STAGE_STACKS, f"{plural(threads, 'thread')} in {plural(len(todo), 'process')}")
    return views


def _process_result(item: OpenedProcess, view: ProcessView, selected: bool) -> ProcessResult:
    result = ProcessResult(item.info, list(view.stacks), walked=view.context is not None, note=view.note)
    if item.memory is not None and result.walked:
        try:
            regions = item.memory.regions()
        except Exception as exc:
            result.note = "; ".join(filter(None, [result.note, f"regions not listed ({exc})"]))
            return result
        loose = [r for r in regions if r.kind is not RegionKind.IMAGE]
        result.rwx_regions = sum(1 for r in loose if r.protection.startswith("RWX"))
        result.executable_private_regions = sum(1 for r in loose if r.kind is RegionKind.PRIVATE and r.executable)
    return result


def _notes(processes: list[ProcessResult]) -> list[str]:
    notes = []
    for proc in processes:
        if proc.note:
            notes.append(f"PID {proc.info.pid} {proc.info.name}: {proc.note}")
        notes.extend(f"PID {proc.info.pid} {proc.info.name} {n}" for n in proc.thread_notes)
    return notes


def _run_rules(ruleset: RuleSet, pids: set[int] | None, result: Analysis, progress: Progress) -> None:
    progress.stage(STAGE_RULES, len(ruleset))
    result.rules = [RuleInfo(r.id, r.name, r.severity, str(r.path)) for r in ruleset.rules]
    result.rule_errors = [str(e) for e in ruleset.errors]
    matches = matches_for_pids(ruleset.run(result.events), pids or None)
    result.findings = sorted((finding_from_match(m) for m in matches),
                             key=lambda f: (f.severity_rank, f.rule_name, f.pid or 0, f.tid or 0))
    progress.advance(STAGE_RULES, len(ruleset))
    progress.finish(STAGE_RULES, f"{plural(len(ruleset), 'rule')}, {plural(len(result.findings), 'finding')}")
