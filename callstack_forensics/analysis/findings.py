"""A rule match as a case-file finding: the rule's text, who it is about, and which frames fired it.

A frame path such as ``process.parent.thread.Ext.call_stack`` names the thread that
frame belongs to (the parent's creating thread there), so each matched frame carries the
pid/tid the report needs to highlight it in the right stack.
"""

from __future__ import annotations

from typing import Any

from ..eql.fields import lookup
from ..events.detections import detection_row
from ..rules import Match
from .model import Finding, MatchedFrame

CALL_STACK_SUFFIX = ".thread.Ext.call_stack"


def finding_from_match(match: Match) -> Finding:
    row = detection_row(match)
    rule = match.rule
    finding = Finding(rule.id, rule.name, rule.severity, rule.description, rule.query, row.pid, row.process,
                      row.tid, event_actions=row.event_actions, evidence=row.evidence, events=match.events,
                      techniques=techniques(rule.threat))
    # Only call-stack arrays hold frames: an _arraysearch over another array (hardware breakpoints,
    # queued APCs, patched exports) matched an element of that array, which the evidence names.
    finding.frames = [f for f in (_matched_frame(match.events, path, index) for path, index in match.matched_frames
                                  if path.endswith(CALL_STACK_SUFFIX)) if f is not None]
    finding.prevalence = next((p for p in (_get(e, "process.thread.Ext.call_stack_prevalence") for e in match.events)
                               if isinstance(p, dict)), None)
    return finding


def techniques(threat: list[dict[str, Any]]) -> list[str]:
    """``T1055.012 Process Hollowing`` for each MITRE ATT&CK technique (and sub-technique) of a
    rule's ``[[threat]]`` tables, as Elastic's rules name them."""
    out: list[str] = []
    for entry in threat if isinstance(threat, list) else []:
        for technique in entry.get("technique") or [] if isinstance(entry, dict) else []:
            if not isinstance(technique, dict):
                continue
            subs = [s for s in technique.get("subtechnique") or [] if isinstance(s, dict)]
            for item in subs or [technique]:
                label = " ".join(str(item.get(k)) for k in ("id", "name") if item.get(k))
                if label and label not in out:
                    out.append(label)
    return out


def _matched_frame(events: list[dict[str, Any]], path: str, index: int) -> MatchedFrame | None:
    for event in events:
        frames = _get(event, path)
        if not isinstance(frames, list) or not 0 <= index < len(frames) or not isinstance(frames[index], dict):
            continue
        owner = path[: -len(CALL_STACK_SUFFIX)] if path.endswith(CALL_STACK_SUFFIX) else "process"
        pid, tid = _get(event, f"{owner}.pid"), _get(event, f"{owner}.thread.id")
        return MatchedFrame(path, index, pid if isinstance(pid, int) else None, tid if isinstance(tid, int) else None,
                            str(frames[index].get("symbol_info", "?")))
    return None


def _get(event: dict[str, Any], path: str) -> Any:
    try:
        return lookup(event, (path,))
    except Exception:
        return None
