"""Check 9: exports of system DLLs patched in memory to return at once or to jump away.

AMSI and ETW bypasses overwrite the first bytes of ``AmsiScanBuffer`` (``mov eax,
0x80070057; ret``) or ``EtwEventWrite`` (``ret``); inline hooks put a jump there. Writing
to an image page makes a private copy-on-write page, which the image VAD's commit charge
counts. This check reads the first instructions of every export of ntdll, kernelbase,
kernel32 and amsi and calls one patched when:

- its form is a return at once and the export is one Windows never ships that way (the
  AMSI and ETW entry points below), or the module file given for comparison differs; or
- its form is a jump to outside its module, not through the module's own import table
  (kernel32's thunks into kernelbase are shipped that way), with the jump target named;

and the bytes can be a memory patch: the image VAD records private pages (or the source
does not record them, as a minidump), or the module file differs. A module whose VAD
records no private page is not scanned at all (its bytes are the shared image's), and an
export whose bytes are not in the source is never one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...engine.context import ProcessContext
from ...engine.pe import PeImage
from ...memory import MemoryMissing, Module, RegionKind
from .codeform import READ_SIZE, CodeForm, CodeReader, pointer_reader
from .locate import Location, locate

WATCHED = frozenset({"ntdll.dll", "kernelbase.dll", "kernel32.dll", "amsi.dll"})
# Scan and telemetry entry points Windows ships with a body: a return at once there is a bypass.
NEVER_STUBS = frozenset({
    "AmsiScanBuffer", "AmsiScanString", "AmsiOpenSession", "AmsiInitialize", "AmsiUacScan",
    "EtwEventWrite", "EtwEventWriteEx", "EtwEventWriteFull", "EtwEventWriteTransfer", "EtwEventWriteString",
    "EtwEventRegister", "EtwNotificationRegister", "NtTraceEvent", "ZwTraceEvent", "NtTraceControl",
    "ZwTraceControl",
})
MAX_FOLLOW = 2  # a jump inside the module (a hot-patch slot) is followed this many times


@dataclass(frozen=True, slots=True)
class PatchedExport:
    """One export judged patched, with the instructions that show it."""

    export: str
    address: int
    symbol_info: str
    form: CodeForm
    reason: str
    data: bytes
    file_data: bytes | None
    target: Location | None

    def to_ecs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.export, "address": f"{self.address:#x}", "symbol_info": self.symbol_info,
                               "form": self.form.form, "disassembly": "\n".join(self.form.disassembly),
                               "bytes": self.data[: max(self.form.length, 1)].hex(), "reason": self.reason}
        if self.file_data is not None:
            out["file_bytes"] = self.file_data[: max(self.form.length, 1)].hex()
        if self.form.return_value is not None:
            out["return_value"] = f"{self.form.return_value:#x}"
        if self.target is not None:
            out["target"] = self.target.to_ecs()
        return out


def private_bytes(ctx: ProcessContext, module: Module) -> int | None:
    """The image VAD's private (copy-on-write) bytes; None when the source does not record them."""
    values = [r.private_executable_bytes for r in ctx.memory.regions_within(module.base, module.end)
              if r.kind == RegionKind.IMAGE]
    known = [v for v in values if v is not None]
    return max(known) if known else None


def patched_exports(ctx: ProcessContext, module: Module, reader: CodeReader | None = None) -> list[PatchedExport]:
    """The patched exports of ``module`` (empty for modules outside the watched set)."""
    if module.name.lower() not in WATCHED:
        return []
    private = private_bytes(ctx, module)
    has_file = ctx.memory.file_bytes(module, module.base, 2) is not None
    if private == 0 and not has_file:
        return []
    image = ctx.image_of(module)
    if image is None:
        return []
    reader = reader or CodeReader(pointer_reader(ctx.cache.read))
    out = []
    for export in image.exports:
        found = _judge(ctx, module, image, reader, export.name, module.base + export.rva, private)
        if found is not None:
            out.append(found)
    return out


def _judge(ctx: ProcessContext, module: Module, image: PeImage, reader: CodeReader, name: str, address: int,
           private: int | None) -> PatchedExport | None:
    try:
        data = ctx.cache.read(address, READ_SIZE)
    except MemoryMissing:
        return None  # never a finding from bytes the source does not hold
    bits = 64 if image.is_64 else 32
    form = reader.classify(address, data, bits)
    if form.form is None:
        return None
    file_data = ctx.memory.file_bytes(module, address, READ_SIZE)
    differs = file_data is not None and file_data[: form.length] != data[: form.length]
    if file_data is not None and not differs:
        return None  # the file has these very bytes: shipped that way
    if private == 0 and not differs:
        return None  # the shared image's bytes, not a copy-on-write page
    if form.form == "return":
        if name not in NEVER_STUBS and not differs:
            return None
        reason = ("returns at once; Windows ships it with a body" if name in NEVER_STUBS
                  else "returns at once; the module file's bytes differ")
        return PatchedExport(name, address, _symbol(ctx, address), form, reason, data, file_data, None)
    target = _final_target(ctx, module, reader, address, form, bits)
    if target is None:
        return None
    return PatchedExport(name, address, _symbol(ctx, address), form,
                         f"jumps out of {module.name.lower()} to {target.symbol_info}", data, file_data, target)


def _final_target(ctx: ProcessContext, module: Module, reader: CodeReader, at: int, form: CodeForm,
                  bits: int) -> Location | None:
    """Where a jump ends up when it leaves the module; None for a jump that stays in it, goes
    through the module's own pointer table (an import thunk), or cannot be followed."""
    for _ in range(MAX_FOLLOW + 1):
        if form.target is None:
            return None
        slot = form.pointer_slot
        if slot is not None and module.contains(slot) and not at <= slot < at + READ_SIZE:
            return None  # through the module's own import table: a shipped thunk
        if not module.contains(form.target):
            return locate(ctx, form.target)
        at = form.target
        try:
            data = ctx.cache.read(at, READ_SIZE)
        except MemoryMissing:
            return None
        form = reader.classify(at, data, bits)
        if form.form != "jump":
            return None  # a jump within the module to its own code
    return None


def _symbol(ctx: ProcessContext, address: int) -> str:
    return locate(ctx, address).symbol_info


def library_fields(ctx: ProcessContext, module: Module) -> tuple[dict[str, Any], list[str]]:
    """``dll.Ext.patched_exports`` and evidence sentences for one module."""
    try:
        found = patched_exports(ctx, module)
    except Exception as exc:  # a hostile image must not cost the module its event
        return {}, [f"exports not checked for patches ({type(exc).__name__}: {exc})"]
    if not found:
        return {}, []
    details = [f"{p.symbol_info}: {' ; '.join(p.form.disassembly)} ({p.reason})" for p in found]
    return {"patched_exports": [p.to_ecs() for p in found]}, details
