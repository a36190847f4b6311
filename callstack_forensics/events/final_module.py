"""``call_stack_final_user_module`` beyond its name and path: signature, provenance, Kernel.

- ``code_signature``: Elastic's field is an array of signature objects; ours holds the one that
  Code Integrity's cached signing level of that module (its loader entry's ``SigningLevel``)
  determines, and is absent when no level was recorded (see :mod:`.signing`).
- ``protection_provenance``: the module that made the code's memory executable. A memory image
  shows who holds memory now, not who changed its protection, so it is ``Undetermined``
  (Elastic's value for "cannot tell"), never a guessed module.
- ``Kernel``: a thread with no user-mode context at all (a system thread: no TEB, no trap frame
  into user mode) acts for the kernel; its final user module is named ``Kernel``, as Elastic
  names an operation with no user-mode frames.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ..memory import Module
from .signing import code_signature

UNDETERMINED = "Undetermined"
KERNEL = "Kernel"


def modules_by_path(modules: Iterable[Module]) -> dict[str, Module]:
    """A process's modules by lower-case path, the first listed for a path that repeats: the
    index :func:`complete_final_module` looks in, made once per process (every thread asks)."""
    out: dict[str, Module] = {}
    for module in modules:
        out.setdefault(module.path.lower(), module)
    return out


def complete_final_module(ext: dict[str, Any], by_path: Mapping[str, Module]) -> None:
    """Add signature and provenance to ``ext["call_stack_final_user_module"]`` in place
    (``by_path`` from :func:`modules_by_path`)."""
    final = ext.get("call_stack_final_user_module")
    if not isinstance(final, dict):
        return
    final["protection_provenance"] = UNDETERMINED
    path = final.get("path")
    if not path:
        return
    module = by_path.get(path)
    signature = code_signature(module.signing_level) if module is not None else None
    if signature:
        final["code_signature"] = [signature]


def kernel_final_module(thread: Any) -> dict[str, Any] | None:
    """``{"name": "Kernel"}`` for a thread the source shows to be a kernel thread (no TEB)."""
    note = getattr(thread, "note", None) or ""
    if getattr(thread, "teb", None) is None and note.startswith("system thread"):
        return {"name": KERNEL}
    return None
