"""A rebuilt stack as Elastic's ``*.thread.Ext`` fields, with YARA hits on the frames.

The same function serves ``process.thread.Ext`` (the thread an event is about) and
``process.parent.thread.Ext`` (the thread that created a process): both carry the
frames' ``to_ecs()`` (with ``protection_provenance: Undetermined``), the summary, whether the stack touches unbacked memory and the
final user module, computed over exactly the frames given.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..engine.stack import Frame
from ..engine.summary import summarize
from .final_module import UNDETERMINED
from ..yara_scan import ProcessYara


def stack_fields(frames: Sequence[Frame], yara: ProcessYara | None = None) -> dict[str, Any]:
    """``call_stack``, ``call_stack_summary``, ``call_stack_contains_unbacked``,
    ``call_stack_final_user_module`` for ``frames`` (most recent first)."""
    if not frames:
        return {}
    out: dict[str, Any] = {"call_stack": [_frame(f, yara) for f in frames]}
    out.update(summarize(frames).to_ecs())
    return out


def _frame(frame: Frame, yara: ProcessYara | None) -> dict[str, Any]:
    out = frame.to_ecs()
    # Who made this memory executable is history a memory image does not keep: Elastic's value
    # for "cannot tell" (see final_module.py), never a guessed module.
    out.setdefault("protection_provenance", UNDETERMINED)
    hits = yara.at(frame.address) if yara is not None else []
    if hits:
        out["yara"] = sorted({h.rule for h in hits})
    return out


def yara_for(addresses: Sequence[int | None], yara: ProcessYara | None) -> list[dict[str, Any]]:
    """The YARA hits of the regions any of ``addresses`` point into, once each."""
    if yara is None:
        return []
    seen: dict[tuple[str, int], dict[str, Any]] = {}
    for address in addresses:
        for hit in yara.at(address):
            seen.setdefault((hit.rule, hit.region_start), hit.to_ecs())
    return list(seen.values())
