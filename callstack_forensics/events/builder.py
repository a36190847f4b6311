"""Synthetic ECS events from what a memory image shows (see README, "Events after the fact").

Per process: one ``process`` event (the process object), one ``library`` event per loaded
module, one event per thread from the state it was caught in. Links between processes
(creating threads, fork clones) need every process at once, so the builder takes the
whole :class:`Snapshot` and returns the events in process order: each process's own
event first, then its modules, then its threads.
"""

from __future__ import annotations

from typing import Any, Iterator

from ..engine.context import ProcessContext
from ..memory import Module, RegionKind, ThreadInfo
from ..engine.stack import UNBACKED, UNKNOWN, integrity_fields
from ..hunt.prevalence import ShapeCounts
from . import implants
from .implants.patches import private_bytes
from .evidence import event_header, evidence
from .filefields import apply_facts, image_module, module_facts
from .final_module import complete_final_module, kernel_final_module, modules_by_path
from .mapped_pe import mapped_pe_fields, with_pe
from ..hostfiles import FileFacts
from .identity import process_fields, timestamp, user_fields
from .lineage import CreatorLink, ForkVerdict, fork_verdicts, link_creators, parent_of
from .model import ProcessView, Snapshot
from .paths import VolumeMap
from .signing import code_signature
from .stackfields import stack_fields, yara_for
from .syscalls import SyscallTable, SyscallTables
from .threads import ThreadAnalysis, analyze_thread


def build_events(snapshot: Snapshot, tables: SyscallTables | None = None) -> list[dict[str, Any]]:
    """Every event of the processes the snapshot emits, in process order."""
    tables = tables or SyscallTables()
    volumes = VolumeMap.from_pairs((v.info.image_device_path, v.info.path) for v in snapshot.processes)
    analyses = {v.info.pid: analyze_process(v, tables, volumes) for v in snapshot.processes}
    links = link_creators(snapshot.processes, analyses)
    forks = fork_verdicts(snapshot.processes, analyses, links)
    by_pid = {v.info.pid: v for v in snapshot.processes}
    builder = _Builder(snapshot, volumes, by_pid, ShapeCounts(s for v in snapshot.processes for s in v.stacks))
    events: list[dict[str, Any]] = []
    for view in snapshot.processes:
        if snapshot.emitted(view):
            events.extend(_process_events(builder, view, analyses.get(view.info.pid, []), links, forks))
    return events


def _process_events(builder: "_Builder", view: ProcessView, analyses: list[ThreadAnalysis],
                    links: dict[int, CreatorLink], forks: dict[int, ForkVerdict]) -> list[dict[str, Any]]:
    """A process's events; if the image makes that fail, its process event alone, saying why."""
    try:
        out = [builder.process_event(view, links.get(view.info.pid), forks.get(view.info.pid))]
        out.extend(builder.library_events(view))
        out.extend(builder.thread_event(view, a) for a in analyses)
        out.extend(builder.memory_region_events(view))
        return out
    except Exception as exc:  # a hostile image must not cost the other processes their events
        view.note = "; ".join(n for n in (view.note, f"events not built ({type(exc).__name__}: {exc})") if n)
        return [builder.process_event(view, None, None)]


def analyze_process(view: ProcessView, tables: SyscallTables, volumes: VolumeMap) -> list[ThreadAnalysis]:
    if view.context is None:
        return []
    try:
        table = tables.for_process(view.context)
    except Exception as exc:  # no stub table: calls are then named by frame 0's stub alone
        table = SyscallTable(sources=[f"not read ({exc})"])
    return [analyze_thread(view.context, stack, table, volumes) for stack in view.stacks]


def merge(into: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``extra`` into ``into`` (an activity's ``process.Ext.api`` joins ``process``)."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value
    return into


class _Builder:
    """Per-snapshot state shared by the event functions (volumes, processes by pid)."""

    def __init__(self, snapshot: Snapshot, volumes: VolumeMap, by_pid: dict[int, ProcessView],
                 shapes: ShapeCounts) -> None:
        self.snapshot = snapshot
        self.volumes = volumes
        self.by_pid = by_pid
        self.shapes = shapes
        self._mapped_pe: dict[tuple[int, int], dict[str, str]] = {}
        self._version_strings: dict[bytes, dict[str, str]] = {}  # version resources by their bytes
        self._process: dict[int, dict[str, Any]] = {}
        self._module_paths: dict[int, dict[str, Module]] = {}
        self.observed = timestamp(snapshot.observed_at)  # every thread's event is stamped with it

    def mapped_pe(self, view: ProcessView, module: Module) -> dict[str, str]:
        """The module's ``pe`` fields from its resident pages, read once per module of a process."""
        key = (view.info.pid, module.base)
        if key not in self._mapped_pe and view.context is not None:
            self._mapped_pe[key] = mapped_pe_fields(view.context.memory, module, self._version_strings)
        return self._mapped_pe.get(key, {})

    def process(self, view: ProcessView) -> dict[str, Any]:
        """The event's ``process`` object: worked out once per process (its command line split, its
        parent's, its image's facts and signature), since every event of the process carries it,
        and a copy of its own per event, which the event then adds to (``thread``, ``Ext``)."""
        key = id(view)  # the snapshot holds every view for the builder's life
        if key not in self._process:
            self._process[key] = self._process_fields(view)
        return _copied(self._process[key])

    def _process_fields(self, view: ProcessView) -> dict[str, Any]:
        parent = parent_of(view, self.by_pid)
        out = process_fields(view, parent, self.volumes)
        uptime = _uptime(view, self.snapshot.observed_at)
        if uptime is not None:
            out["uptime"] = uptime
        apply_facts(out, self._image_facts(view))
        self._image_pe(out, view)
        if parent is not None and "parent" in out:
            apply_facts(out["parent"], self._image_facts(parent))
            self._image_pe(out["parent"], parent)
        return out

    def _image_pe(self, target: dict[str, Any], view: ProcessView) -> None:
        if view.context is None:
            return
        module = image_module(view.context.memory, view.info.path)
        if module is not None:
            with_pe(target, self.mapped_pe(view, module))

    def _image_facts(self, view: ProcessView) -> FileFacts | None:
        if self.snapshot.files is None or view.context is None:
            return None
        module = image_module(view.context.memory, view.info.path)
        return module_facts(self.snapshot.files, view.context.memory, module) if module is not None else None

    def _final_module_facts(self, ext: dict[str, Any], ctx: ProcessContext) -> None:
        final = ext.get("call_stack_final_user_module")
        if self.snapshot.files is None or not isinstance(final, dict) or not final.get("path"):
            return
        module = image_module(ctx.memory, final["path"])
        if module is not None:
            apply_facts(final, module_facts(self.snapshot.files, ctx.memory, module), signature_as_list=True)

    # ---- process ------------------------------------------------------------------------

    def process_event(self, view: ProcessView, link: CreatorLink | None, verdict: ForkVerdict | None) -> dict[str, Any]:
        info = view.info
        process = self.process(view)
        related: list[dict[str, Any]] = []
        if info.clone_root is not None:
            process["Ext"]["clone_root"] = info.clone_root
        if verdict is not None and verdict.fork_clone is not None:
            process["Ext"]["fork_clone"] = verdict.fork_clone
        if link is not None:
            process["parent"]["thread"] = self._creator_thread(link)
            thread = link.analysis.stack.thread
            related.append({"object": "_ETHREAD", "address": _hex(getattr(thread, "object_address", None)),
                            "pid": link.creator.info.pid, "tid": link.analysis.stack.tid,
                            "detail": ("inherited stack: " if link.inherited else "creating thread: ") + link.how})
        detail = "process object: parent pid, create time, token, CloneRoot; image path and command line from the PEB"
        if view.context is not None:
            found, said = implants.process_fields(view.context, info)
            process["Ext"].update(found)
            detail = "; ".join([detail, *said])
        if verdict is not None and info.clone_root:
            detail += f"; fork: {verdict.detail}"
        if view.note:
            detail += f"; note: {view.note}"
        header = event_header("process", "start", ["start"])
        header["outcome"] = "success"  # the process object exists: its creation succeeded
        event = {"@timestamp": timestamp(info.create_time), "event": header,
                 "process": process, **user_fields(info.user_sid),
                 "evidence": evidence("_EPROCESS", info.object_address, detail, pid=info.pid, related=related)}
        return _drop_none(event)

    def _by_path(self, ctx: ProcessContext) -> dict[str, Module]:
        """The process's modules by path, indexed once per process (the snapshot holds every
        context for the builder's life, so its id stays its own)."""
        key = id(ctx)
        if key not in self._module_paths:
            self._module_paths[key] = modules_by_path(_modules(ctx))
        return self._module_paths[key]

    def _creator_thread(self, link: CreatorLink) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if not link.inherited:
            out["id"] = link.analysis.stack.tid
        out["Ext"] = stack_fields(link.frames, link.creator.yara)
        if link.creator.context is not None:
            complete_final_module(out["Ext"], self._by_path(link.creator.context))
            self._final_module_facts(out["Ext"], link.creator.context)
        return out

    # ---- libraries -----------------------------------------------------------------------

    def library_events(self, view: ProcessView) -> Iterator[dict[str, Any]]:
        if view.context is None:
            return
        for module in view.context.memory.modules():
            yield self._library_event(view, view.context, module)

    def _library_event(self, view: ProcessView, ctx: ProcessContext, module: Module) -> dict[str, Any]:
        dll: dict[str, Any] = {"name": module.name, "path": self.volumes.dos_path(module.path)}
        ext: dict[str, Any] = {"mapped_address": f"{module.base:#x}", "mapped_size": module.size}
        private = private_bytes(ctx, module)  # the image VAD's figure, over its sections
        if private is not None:
            ext["allocation_private_bytes"] = private
        if not module.linked:
            ext["unlinked"] = True
        found, said = implants.library_fields(ctx, module)
        ext.update(found)
        dll["Ext"] = ext
        signature = code_signature(module.signing_level)
        if signature:
            dll["code_signature"] = signature
        apply_facts(dll, module_facts(self.snapshot.files, ctx.memory, module))
        with_pe(dll, self.mapped_pe(view, module))
        if module.linked:
            obj, detail = "_LDR_DATA_TABLE_ENTRY", "module in the PEB's loader list (address: the module's base)"
        else:
            obj, detail = "_MMVAD", "image VAD with a PE header that no loader list names: an unlinked module"
        detail = "; ".join([detail, *said])
        header = event_header("library", "load", ["start"])
        header["outcome"] = "success"  # the module is mapped: the load succeeded
        event = {"@timestamp": timestamp(module.load_time), "event": header,
                 "process": self.process(view), "dll": dll, **user_fields(view.info.user_sid),
                 "evidence": evidence(obj, module.base, detail, pid=view.info.pid)}
        return _drop_none(event)

    # ---- threads -----------------------------------------------------------------------------

    def thread_event(self, view: ProcessView, analysis: ThreadAnalysis) -> dict[str, Any]:
        stack, activity = analysis.stack, analysis.activity
        thread = stack.thread
        process = self.process(view)
        ext = self._thread_ext(view, analysis)
        found, said = ({}, []) if view.context is None else implants.thread_fields(
            view.context, thread if isinstance(thread, ThreadInfo) else None, stack.frames)
        ext.update(found)
        process["thread"] = {"id": stack.tid, "Ext": ext}
        event: dict[str, Any] = {"@timestamp": self.observed,
                                 "event": event_header(activity.category, activity.action, activity.type),
                                 "process": process}
        sid = getattr(thread, "impersonation_sid", None) or view.info.user_sid
        event.update(user_fields(sid))
        merge(event, activity.fields)
        addresses = [f.address for f in stack.frames] + [getattr(thread, "win32_start_address", None)]
        hits = yara_for(addresses, view.yara)
        if hits:
            event["yara"] = {"matches": hits}
        event["evidence"] = evidence("_ETHREAD", getattr(thread, "object_address", None),
                                     "; ".join([_thread_detail(analysis), *said]),
                                     pid=view.info.pid, tid=stack.tid, related=analysis.related)
        return _drop_none(event)

    # ---- private memory ----------------------------------------------------------------------

    def memory_region_events(self, view: ProcessView) -> list[dict[str, Any]]:
        """One event per PE image found in the process's private memory (issue 15, check 10)."""
        if view.context is None:
            return []
        found, notes = implants.private_pes(view.context)
        if notes:
            view.note = "; ".join(n for n in (view.note, *notes) if n)
        out = []
        for pe in found:
            process = self.process(view)
            process["Ext"]["memory_region"] = pe.to_ecs()
            out.append({"@timestamp": self.observed,
                        "event": event_header("intrusion_detection", "memory_region", ["info"]),
                        "process": process, **user_fields(view.info.user_sid),
                        "evidence": evidence("_MMVAD", pe.allocation_base, pe.describe(), pid=view.info.pid)})
        return out

    def _thread_ext(self, view: ProcessView, analysis: ThreadAnalysis) -> dict[str, Any]:
        stack = analysis.stack
        thread = stack.thread
        ext: dict[str, Any] = stack_fields(stack.frames, view.yara)
        if view.context is not None:
            complete_final_module(ext, self._by_path(view.context))
            self._final_module_facts(ext, view.context)
        kernel = kernel_final_module(thread) if not stack.frames else None
        if kernel is not None:
            ext["call_stack_final_user_module"] = kernel
        start = getattr(thread, "win32_start_address", None) or getattr(thread, "start_address", None)
        if start and view.context is not None:
            ext["start_address"] = f"{start:#x}"
            ext["start_address_module"] = _module_name(view.context, start)
        for key in ("state", "wait_reason"):
            if getattr(thread, key, None):
                ext[key] = getattr(thread, key)
        if analysis.syscall is not None:
            ext["syscall"] = analysis.syscall.to_ecs()
        ext["stack_integrity"] = integrity_fields(stack.integrity)
        prevalence = self.shapes.of(stack)
        if prevalence is not None:
            ext["call_stack_prevalence"] = prevalence.to_ecs()
        records = [r.to_ecs() for r in view.context_records if r.tid == stack.tid]
        if records:
            ext["context_records"] = records
        if getattr(thread, "impersonation_sid", None):
            ext["impersonating"] = True
        created = timestamp(getattr(thread, "create_time", None))
        if created:
            ext["create_time"] = created
        notes = [n for n in (stack.note, analysis.note) if n]
        if stack.stop_reason is not None:
            ext["stop_reason"] = stack.stop_reason.value
        if notes:
            ext["note"] = "; ".join(notes)
        return ext


def _thread_detail(analysis: ThreadAnalysis) -> str:
    thread = analysis.stack.thread
    state = getattr(thread, "state", None) or "state unknown"
    reason = getattr(thread, "wait_reason", None)
    parts = [f"thread {state}" + (f" ({reason})" if reason else "")]
    call = analysis.syscall
    if call is not None:
        parts.append(f"in {call.name or f'system call {call.number:#x}'} ({call.source})")
        if call.mismatch:
            parts.append(f"frame 0 is the stub of {call.stub}: the call was issued from another stub's syscall")
    parts.extend(analysis.activity.details)
    if analysis.argument_sources:
        parts.append("arguments from " + ", ".join(f"{n}: {s}" for n, s in sorted(analysis.argument_sources.items())))
    return "; ".join(parts)


def _module_name(ctx: ProcessContext, address: int) -> str:
    module = ctx.memory.module_at(address)
    if module is not None:
        return module.name.lower()
    region = ctx.memory.region_at(address)
    if region is not None and (region.kind == RegionKind.PRIVATE or (region.kind == RegionKind.MAPPED and not region.path)):
        return UNBACKED
    return UNKNOWN


def _uptime(view: ProcessView, observed_at: Any) -> int | None:
    """Seconds from the process's creation to the capture (both from the image), or None."""
    created = view.info.create_time
    if created is None or observed_at is None:
        return None
    seconds = int((observed_at - created).total_seconds())
    return seconds if seconds >= 0 else None


def _modules(ctx: ProcessContext) -> list[Module]:
    try:
        return list(ctx.memory.modules())
    except Exception:  # a module list that does not read leaves the signature out, nothing more
        return []


def _hex(value: int | None) -> str | None:
    return f"{value:#x}" if value is not None else None


def _copied(value: Any) -> Any:
    """A copy of an event's JSON-like part, down to its leaves (strings and numbers are shared:
    only dicts and lists are entered, a call per leaf having been most of a copy's calls)."""
    if type(value) is dict:
        return {k: _copied(v) if type(v) in _CONTAINERS else v for k, v in value.items()}
    if type(value) is list:
        return [_copied(v) if type(v) in _CONTAINERS else v for v in value]
    return value


_CONTAINERS = (dict, list)


def _drop_none(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if v is not None}

