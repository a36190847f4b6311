"""One analysis as the case store's five tables: processes, threads, frames, events, findings.

Every row carries the source's SHA-256 and host name, so the tables of many sources can be read
as one (a glob in DuckDB, Spark or pandas) and still say where each row came from. Schemas are
explicit: a source without a single finding must still write a findings table the others union
with. Events keep their whole ECS document as JSON text beside a few columns to filter on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ..analysis import Analysis, Finding
from ..engine.stack import Frame, ThreadStack
from ..engine.summary import summary_string
from .shape import frame_label, stack_id, stack_shape

KEYS = [pa.field("sha256", pa.string(), nullable=False), pa.field("host", pa.string(), nullable=False)]
TS = pa.timestamp("us", tz="UTC")

SCHEMAS: dict[str, pa.Schema] = {
    "processes": pa.schema(KEYS + [
        ("pid", pa.int64()), ("ppid", pa.int64()), ("name", pa.string()), ("path", pa.string()),
        ("command_line", pa.string()), ("create_time", TS), ("wow64", pa.bool_()), ("walked", pa.bool_()),
        ("note", pa.string()), ("threads", pa.int64()), ("unbacked_frames", pa.int64()),
        ("rwx_regions", pa.int64()), ("executable_private_regions", pa.int64()),
    ]),
    "threads": pa.schema(KEYS + [
        ("pid", pa.int64()), ("process_name", pa.string()), ("tid", pa.int64()), ("frames", pa.int64()),
        ("stack_shape", pa.string()), ("stack_id", pa.string()), ("call_stack_summary", pa.string()),
        ("unbacked_frames", pa.int64()), ("rwx_frames", pa.int64()), ("stop_reason", pa.string()),
        ("note", pa.string()), ("wow64", pa.bool_()),
    ]),
    "frames": pa.schema(KEYS + [
        ("pid", pa.int64()), ("tid", pa.int64()), ("frame_index", pa.int64()), ("label", pa.string()),
        ("symbol_info", pa.string()), ("address", pa.uint64()), ("module_name", pa.string()),
        ("module_path", pa.string()), ("protection", pa.string()), ("region_type", pa.string()),
        ("unbacked", pa.bool_()), ("rwx", pa.bool_()), ("method", pa.string()), ("trust", pa.string()),
        ("call_verified", pa.bool_()),
    ]),
    "events": pa.schema(KEYS + [
        ("timestamp", pa.string()), ("action", pa.string()), ("category", pa.string()), ("pid", pa.int64()),
        ("tid", pa.int64()), ("process_name", pa.string()), ("document", pa.string()),
    ]),
    "findings": pa.schema(KEYS + [
        ("rule_id", pa.string()), ("rule_name", pa.string()), ("severity", pa.string()), ("pid", pa.int64()),
        ("process", pa.string()), ("tid", pa.int64()), ("stack_id", pa.string()), ("stack_shape", pa.string()),
        ("frames", pa.list_(pa.string())), ("techniques", pa.list_(pa.string())),
        ("event_actions", pa.list_(pa.string())),
    ]),
}
TABLES = tuple(SCHEMAS)


@dataclass(frozen=True, slots=True)
class SourceKey:
    """The two columns every row of a source carries."""

    sha256: str
    host: str


def analysis_tables(analysis: Analysis, key: SourceKey) -> dict[str, pa.Table]:
    """The five tables of one analysis, each with the store's schema."""
    stacks = [s for p in analysis.processes for s in p.stacks]
    shapes = {(s.pid, s.tid): _shape(s) for s in stacks}
    rows: dict[str, list[dict[str, Any]]] = {
        "processes": [_process_row(p) for p in analysis.processes],
        "threads": [_thread_row(s, shapes[(s.pid, s.tid)]) for s in stacks],
        "frames": [_frame_row(s, f) for s in stacks for f in s.frames],
        "events": [_event_row(e) for e in analysis.events],
        "findings": [_finding_row(f, shapes) for f in analysis.findings],
    }
    return {name: _table(name, items, key) for name, items in rows.items()}


def _table(name: str, rows: list[dict[str, Any]], key: SourceKey) -> pa.Table:
    schema = SCHEMAS[name]
    for row in rows:
        row["sha256"], row["host"] = key.sha256, key.host
    return pa.Table.from_pylist(rows, schema=schema)


def _shape(stack: ThreadStack) -> str:
    return stack_shape(frame_label(f) for f in stack.frames)


def _process_row(process: Any) -> dict[str, Any]:
    info = process.info
    return {"pid": info.pid, "ppid": info.ppid, "name": info.name, "path": info.path,
            "command_line": info.command_line, "create_time": info.create_time, "wow64": info.is_wow64,
            "walked": process.walked, "note": process.note, "threads": len(process.stacks),
            "unbacked_frames": process.unbacked_frames, "rwx_regions": process.rwx_regions,
            "executable_private_regions": process.executable_private_regions}


def _thread_row(stack: ThreadStack, shape: str) -> dict[str, Any]:
    return {"pid": stack.pid, "process_name": stack.process_name, "tid": stack.tid, "frames": len(stack.frames),
            "stack_shape": shape, "stack_id": stack_id(shape), "call_stack_summary": summary_string(stack.frames),
            "unbacked_frames": sum(1 for f in stack.frames if f.unbacked),
            "rwx_frames": sum(1 for f in stack.frames if _rwx(f)),
            "stop_reason": stack.stop_reason.value if stack.stop_reason else None, "note": stack.note,
            "wow64": stack.is_wow64}


def _frame_row(stack: ThreadStack, frame: Frame) -> dict[str, Any]:
    module = frame.module
    return {"pid": stack.pid, "tid": stack.tid, "frame_index": frame.index, "label": frame_label(frame),
            "symbol_info": frame.symbol_info, "address": frame.address,
            "module_name": module.name.lower() if module else None, "module_path": module.path.lower() if module else None,
            "protection": frame.protection, "region_type": frame.region_kind, "unbacked": frame.unbacked,
            "rwx": _rwx(frame), "method": frame.method.value, "trust": frame.trust.value,
            "call_verified": frame.call_verified}


def _rwx(frame: Frame) -> bool:
    return frame.protection.startswith("RWX")


def _event_row(event: dict[str, Any]) -> dict[str, Any]:
    process = event.get("process") if isinstance(event.get("process"), dict) else {}
    thread = process.get("thread") if isinstance(process.get("thread"), dict) else {}
    kind = event.get("event") if isinstance(event.get("event"), dict) else {}
    category = kind.get("category")
    return {"timestamp": _text(event.get("@timestamp")), "action": _text(kind.get("action")),
            "category": _text(category[0] if isinstance(category, list) and category else category),
            "pid": _int(process.get("pid")), "tid": _int(thread.get("id")), "process_name": _text(process.get("name")),
            "document": json.dumps(event, sort_keys=True, default=str)}


def _finding_row(finding: Finding, shapes: dict[tuple[int, int], str]) -> dict[str, Any]:
    shape = shapes.get(_finding_thread(finding))
    return {"rule_id": finding.rule_id, "rule_name": finding.rule_name, "severity": finding.severity,
            "pid": finding.pid, "process": finding.process, "tid": finding.tid,
            "stack_id": stack_id(shape) if shape is not None else None, "stack_shape": shape,
            "frames": [f.label() for f in finding.frames], "techniques": list(finding.techniques),
            "event_actions": list(finding.event_actions)}


def _finding_thread(finding: Finding) -> tuple[int | None, int | None]:
    """The thread whose stack made the rule fire: the first matched frame's (a process start's
    is the parent's creating thread), else the thread the finding is about."""
    for frame in finding.frames:
        if frame.pid is not None and frame.tid is not None:
            return frame.pid, frame.tid
    return finding.pid, finding.tid


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None

