"""Check 10, first half: image mappings whose file is deleted, transacted, or another file.

Phantom DLL hollowing and process doppelgänging create the image section from a file opened
in a TxF transaction (then rolled back: the disk never held the code); process ghosting from
a file already marked for deletion; module overloading maps one file while the loader entry
names another. A memory image keeps the evidence in the file object behind the image VAD
(``FILE_OBJECT.DeletePending``, the transaction in its FileObjectExtension) and in the VAD's
file name beside the loader entry's path. Only the file names are compared here (after the
last backslash): a directory that differs can be a junction, a subst drive or a short 8.3
name, and is reported as the mapped path without being called an evasion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...engine.context import ProcessContext
from ...memory import Module, RegionKind

DELETED = "deleted_image_file"
TRANSACTED = "transacted_image_file"
MISMATCH = "mapped_file_mismatch"


@dataclass(slots=True)
class ImageEvasions:
    """What the image mapping of one module shows, as ECS fields and evidence sentences."""

    evasions: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)


def file_name(path: str) -> str:
    return path.replace("/", "\\").rstrip("\\").rsplit("\\", 1)[-1].lower()


def image_evasions(ctx: ProcessContext, module: Module) -> ImageEvasions:
    """The evasions the module's image VAD and its file object show (none when unreadable)."""
    out = ImageEvasions()
    mapped_path = _vad_path(ctx, module)
    mapped = ctx.memory.mapped_file(module.base)
    if mapped is not None:
        if mapped.delete_pending:
            out.evasions.append(DELETED)
            out.details.append(f"the mapped file {mapped.name or mapped_path or '?'} is marked for deletion "
                               f"(FILE_OBJECT {mapped.file_object:#x} DeletePending)")
        if mapped.transaction:
            out.evasions.append(TRANSACTED)
            out.details.append(f"the mapped file {mapped.name or mapped_path or '?'} was opened in a transaction "
                               f"(FILE_OBJECT {mapped.file_object:#x}, transaction object {mapped.transaction:#x})")
    named = module.path and module.path != "Unknown"
    if module.linked and mapped_path and named and _different_files(mapped_path, module.path):
        out.evasions.append(MISMATCH)
        out.details.append(f"the loader entry names {module.path} but the image VAD maps {mapped_path}")
    if out.evasions:
        out.fields["defense_evasions"] = out.evasions
        if mapped_path:
            out.fields["mapped_path"] = mapped_path
        if mapped is not None:
            out.fields["mapped_file"] = _mapped_ecs(mapped)
    return out


def _different_files(mapped: str, listed: str) -> bool:
    """The two paths name different files. An 8.3 short name (``PROGRA~1.EXE``, what a process
    started through one keeps in its loader entry) cannot be compared with a long one: not different."""
    a, b = file_name(mapped), file_name(listed)
    return a != b and "~" not in a and "~" not in b


def _vad_path(ctx: ProcessContext, module: Module) -> str | None:
    for region in ctx.memory.regions_of_allocation(module.base):
        if region.kind == RegionKind.IMAGE and region.path:
            return region.path
    return None


def _mapped_ecs(mapped) -> dict[str, Any]:
    out: dict[str, Any] = {"file_object": f"{mapped.file_object:#x}"}
    if mapped.name is not None:
        out["name"] = mapped.name
    if mapped.delete_pending is not None:
        out["delete_pending"] = mapped.delete_pending
    if mapped.transaction is not None:
        out["transacted"] = bool(mapped.transaction)
    return out
