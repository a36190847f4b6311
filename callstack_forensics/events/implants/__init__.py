"""Implant checks that read state, not stacks (issue 15, checks 7-10), as event fields.

Each check turns what the source holds into ECS fields on the event the evidence belongs to,
with a sentence for the event's ``evidence.detail``:

- ``process.thread.Ext``: ``hardware_breakpoint_set`` / ``hardware_breakpoints`` (check 7,
  :mod:`debugregs`), ``user_apcs`` / ``alertable`` / ``user_apc_pending`` (check 8, :mod:`apcs`);
- ``dll.Ext``: ``patched_exports`` (check 9, :mod:`patches`), ``defense_evasions`` /
  ``mapped_path`` / ``mapped_file`` (check 10, :mod:`phantom`); the executable's own image
  also gives ``process.Ext.defense_evasions``;
- one ``memory_region`` event per PE image found in private memory, with Elastic's
  ``process.Ext.memory_region`` fields (check 10, :mod:`reflective`).

Every function here returns ``(fields, details)`` and never raises for a hostile image: a
check that fails says so in the details and adds no field.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ...engine.context import ProcessContext
from ...engine.stack import Frame
from ...memory import Module, ProcessInfo, ThreadInfo
from . import apcs, debugregs, patches, phantom, reflective

Fields = tuple[dict[str, Any], list[str]]


def _guarded(what: str, check: Callable[[], Fields]) -> Fields:
    try:
        return check()
    except Exception as exc:  # one check's failure costs only its own fields
        return {}, [f"{what} not checked ({type(exc).__name__}: {exc})"]


def thread_fields(ctx: ProcessContext, thread: ThreadInfo | None, frames: Sequence[Frame]) -> Fields:
    """Checks 7 and 8 for one thread: fields for ``process.thread.Ext``."""
    if thread is None:
        return {}, []
    fields: dict[str, Any] = {}
    details: list[str] = []
    for what, check in (("debug registers", lambda: debugregs.thread_fields(ctx, thread)),
                        ("APC queue", lambda: apcs.thread_fields(ctx, thread, frames))):
        more, said = _guarded(what, check)
        fields.update(more)
        details.extend(said)
    return fields, details


def library_fields(ctx: ProcessContext, module: Module) -> Fields:
    """Checks 9 and 10 for one module: fields for ``dll.Ext``."""
    fields, details = _guarded("exports", lambda: patches.library_fields(ctx, module))
    found = _guarded("image mapping", lambda: _image_fields(ctx, module))
    fields.update(found[0])
    return fields, details + found[1]


def _image_fields(ctx: ProcessContext, module: Module) -> Fields:
    found = phantom.image_evasions(ctx, module)
    return found.fields, found.details


def process_fields(ctx: ProcessContext, info: ProcessInfo) -> Fields:
    """Check 10 for the executable's own image: ``process.Ext.defense_evasions``."""
    return _guarded("executable image", lambda: _executable_fields(ctx, info))


def _executable_fields(ctx: ProcessContext, info: ProcessInfo) -> Fields:
    module = executable_module(ctx, info)
    if module is None:
        return {}, []
    fields, details = _image_fields(ctx, module)
    evasions = fields.get("defense_evasions")
    return ({"defense_evasions": evasions} if evasions else {}), details


def executable_module(ctx: ProcessContext, info: ProcessInfo) -> Module | None:
    """The module that is the process's executable: its path, else its (14-character) name."""
    modules = list(ctx.memory.modules())
    if info.path:
        for module in modules:
            if module.path.lower() == info.path.lower():
                return module
    for module in modules:
        if info.name and module.name.lower().startswith(info.name.lower()) and module.name.lower().endswith(".exe"):
            return module
    return None


def private_pes(ctx: ProcessContext) -> tuple[list[reflective.PrivatePe], list[str]]:
    """PE images in the process's private memory (check 10), and a note if the scan failed."""
    try:
        return reflective.private_pes(ctx), []
    except Exception as exc:
        return [], [f"private memory not scanned for PE images ({type(exc).__name__}: {exc})"]


__all__ = ["library_fields", "private_pes", "process_fields", "thread_fields", "executable_module"]
