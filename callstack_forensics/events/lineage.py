"""Which thread created which process, and which processes are fork clones.

A memory image keeps no record of process creation, but a thread still blocked in the
creating system call is the evidence of it: its arguments name the child (image path,
command line) and the child already exists, with the creator as its parent
(``InheritedFromUniqueProcessId``). A thread is linked to a child of its process only when
the arguments match the child (command line, image path); a thread forking its own process
(inside RtlCloneUserProcess, no parameters) is linked to its fork: a child whose
``CloneRoot`` is set and that runs the same image.

Fork clones: Windows sets ``CloneRoot`` in both the clone and the process it was cloned
from, so the flag alone does not tell them apart. A process is a clone when its creator
was seen forking, when one of its threads carries the frames it inherited from the
creator (a clone function below frames of its own), or when its parent runs the same image
and has ``CloneRoot`` too; a process that is itself the source of a clone is not one.
Anything else with ``CloneRoot`` set stays undetermined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ..engine.stack import Frame
from .activity import ChildRequest
from .decode_process import forking_now, is_clone_frame
from .model import ProcessView
from .threads import ThreadAnalysis


@dataclass(slots=True)
class CreatorLink:
    """The thread (and the frames) behind a process's ``process.parent.thread``."""

    creator: ProcessView  # the process the frames belong to
    analysis: ThreadAnalysis
    frames: list[Frame]
    how: str
    inherited: bool = False  # the frames are the clone's own copy of its creator's stack


@dataclass(slots=True)
class ForkVerdict:
    fork_clone: bool | None
    detail: str


@dataclass(slots=True)
class _Candidate:
    score: int
    creator: ProcessView
    analysis: ThreadAnalysis
    child: ProcessView
    how: str


def link_creators(views: list[ProcessView], analyses: dict[int, list[ThreadAnalysis]]) -> dict[int, CreatorLink]:
    """Child pid -> the link to its creating thread (each thread and each child linked once)."""
    candidates = [c for view in views for a in analyses.get(view.info.pid, []) for c in _candidates(view, a, views)]
    candidates.sort(key=lambda c: (-c.score, -_created(c.child)))
    links: dict[int, CreatorLink] = {}
    used: set[int] = set()
    for cand in candidates:
        if cand.child.info.pid in links or id(cand.analysis) in used:
            continue
        used.add(id(cand.analysis))
        links[cand.child.info.pid] = CreatorLink(cand.creator, cand.analysis, list(cand.analysis.stack.frames), cand.how)
    for view in views:
        if view.info.pid not in links:
            inherited = _inherited(view, analyses.get(view.info.pid, []))
            if inherited is not None:
                links[view.info.pid] = inherited
    return links


def _created(view: ProcessView) -> float:
    when = view.info.create_time
    return when.timestamp() if when is not None else 0.0


def children(parent: ProcessView, views: Iterable[ProcessView]) -> list[ProcessView]:
    """Processes naming ``parent`` as their parent and created after it (a reused pid is not a parent)."""
    out = []
    for view in views:
        if view.info.ppid != parent.info.pid or view.info.pid == parent.info.pid:
            continue
        if parent.info.create_time and view.info.create_time and view.info.create_time < parent.info.create_time:
            continue
        out.append(view)
    return out


def _candidates(view: ProcessView, analysis: ThreadAnalysis, views: list[ProcessView]) -> list[_Candidate]:
    request = analysis.activity.child
    if request is None:
        return []
    parent = view
    if request.parent_pid is not None and request.parent_pid != view.info.pid:
        parent = next((v for v in views if v.info.pid == request.parent_pid), view)
    if request.clone:
        return _clone_candidates(view, analysis, children(parent, views))
    out = []
    for child in children(parent, views):
        score, how = _match(request, child)
        if score:
            out.append(_Candidate(score, view, analysis, child, how))
    return out


def _match(request: ChildRequest, child: ProcessView) -> tuple[int, str]:
    """How well a creation request names a child: 0 when it names another process."""
    info = child.info
    command = request.command_line is not None and info.command_line is not None
    image = bool(request.image) and bool(info.path)
    if command and request.command_line.strip() != info.command_line.strip():  # type: ignore[union-attr]
        return 0, ""
    if image and request.image.lower() != info.path.lower():  # type: ignore[union-attr]
        return 0, ""
    matched = [what for what, ok in (("command line", command), ("image path", image)) if ok]
    if not matched:
        return 0, ""
    return 2 * command + image, f"its creation arguments name this process ({' and '.join(matched)} equal)"


def _clone_candidates(view: ProcessView, analysis: ThreadAnalysis, kids: list[ProcessView]) -> list[_Candidate]:
    out = []
    for child in kids:
        if child.info.clone_root and _same_image(view, child):
            how = "it is inside RtlCloneUserProcess, and this child has CloneRoot set and runs the same image"
            out.append(_Candidate(1, view, analysis, child, how))
    return out


def _same_image(a: ProcessView, b: ProcessView) -> bool:
    return bool(a.info.path) and (a.info.path or "").lower() == (b.info.path or "").lower()


def _inherited(view: ProcessView, analyses: list[ThreadAnalysis]) -> CreatorLink | None:
    """A clone's thread still holding the creator's frames below its own (from a clone function on)."""
    for analysis in analyses:
        stack = analysis.stack
        if forking_now(stack):
            continue
        index = next((f.index for f in stack.frames if is_clone_frame(f.symbol_info)), None)
        if index:
            how = (f"thread {stack.tid} of this process holds {stack.frames[index].symbol_info} at frame {index} "
                   "under frames of its own: the stack it inherited from its creator")
            return CreatorLink(view, analysis, list(stack.frames[index:]), how, inherited=True)
    return None


def fork_verdicts(views: list[ProcessView], analyses: dict[int, list[ThreadAnalysis]],
                  links: dict[int, CreatorLink]) -> dict[int, ForkVerdict]:
    by_pid = {v.info.pid: v for v in views}
    out: dict[int, ForkVerdict] = {}
    for view in views:
        out[view.info.pid] = _verdict(view, by_pid, analyses, links, views)
    return out


def _verdict(view: ProcessView, by_pid: dict[int, ProcessView], analyses: dict[int, list[ThreadAnalysis]],
             links: dict[int, CreatorLink], views: list[ProcessView]) -> ForkVerdict:
    link = links.get(view.info.pid)
    if link is not None and link.inherited:
        return ForkVerdict(True, link.how)
    if view.info.clone_root is False:
        return ForkVerdict(False, "CloneRoot is empty")
    if view.info.clone_root is None:
        return ForkVerdict(None, "the layout has no CloneRoot")
    if link is not None and link.analysis.activity.child is not None and link.analysis.activity.child.clone:
        return ForkVerdict(True, "CloneRoot set, and the creating thread was caught forking")
    if _is_source(view, analyses, views):
        return ForkVerdict(False, "CloneRoot set: this process is the source of a fork")
    parent = parent_of(view, by_pid)
    if parent is not None and parent.info.clone_root and _same_image(parent, view):
        return ForkVerdict(True, "CloneRoot set, and the parent runs the same image with CloneRoot set")
    return ForkVerdict(None, "CloneRoot set (a fork or the source of one; the image does not tell which)")


def parent_of(view: ProcessView, by_pid: dict[int, ProcessView]) -> ProcessView | None:
    """The process named by ``view``'s parent pid, unless it was created after ``view`` (a reused pid)."""
    parent = by_pid.get(view.info.ppid) if view.info.ppid is not None else None
    if parent is None or parent is view:
        return None
    if parent.info.create_time and view.info.create_time and view.info.create_time < parent.info.create_time:
        return None
    return parent


def _is_source(view: ProcessView, analyses: dict[int, list[ThreadAnalysis]], views: list[ProcessView]) -> bool:
    if any(a.activity.child is not None and a.activity.child.clone for a in analyses.get(view.info.pid, [])):
        return True
    return any(c.info.clone_root and _same_image(view, c) for c in children(view, views))
