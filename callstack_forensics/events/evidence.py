"""The ``evidence`` object every event carries: which object of the image, at which address.

``object`` names the kernel structure (``_EPROCESS``, ``_ETHREAD``, ``_LDR_DATA_TABLE_ENTRY``,
``_MMVAD``) or the source's record; ``address`` is where it lies (a kernel address for
objects, a process address for modules); ``detail`` says in words what was read from it;
``related`` lists the other objects the event's fields come from (handles and the objects
behind them, argument structures, the creating thread).
"""

from __future__ import annotations

from typing import Any


def evidence(obj: str, address: int | None, detail: str, *, pid: int | None = None, tid: int | None = None,
             related: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"object": obj, "address": f"{address:#x}" if address is not None else None}
    if pid is not None:
        out["pid"] = pid
    if tid is not None:
        out["tid"] = tid
    out["detail"] = detail
    if related:
        out["related"] = related
    return out


def event_header(category: str, action: str, types: list[str]) -> dict[str, Any]:
    return {
        "kind": "event",
        "category": [category],
        "type": types,
        "action": action,
        "provider": "callstack_forensics",
        "module": "callstack_forensics",
        "dataset": "callstack_forensics.memory",
    }
