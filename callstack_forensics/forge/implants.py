"""The forge's implant state (issue 15, checks 7-10): scenario keys, their plans, and the writers.

What a scenario can ask for, and where the forge writes it:

- a thread's hardware ``breakpoints`` -> Dr0-Dr3 and Dr7 in its trap frame, and
  ``Header.ActiveDR7`` set in its KTHREAD (the kernel saves debug registers only then);
  ``debug_active = false`` leaves the flag clear (stale values a reader must ignore);
- a thread's queued user ``apcs`` -> KAPCs in the pool, on ``ApcState.ApcListHead[UserMode]``,
  ``UserApcPending`` set; ``alertable = true`` sets KTHREAD.Alertable with a user-mode wait;
- a module's ``patches`` -> bytes written over an export on a private copy of its page (a frame
  of its own, counted in the image VAD's commit charge);
- a module's ``file_deleted`` / ``file_transacted`` -> a file object of its own for the mapping,
  with DeletePending set or a TxF transaction in its FileObjectExtension; ``mapped_file`` -> the
  image VAD maps that file while the loader entry keeps the module's path;
- a region's ``pe`` -> a catalog module's image laid out in the region as a loader maps it
  (``pe_header = false`` wipes its header page), for reflective loading.

Every structure is written by name through the symbol table, as the rest of the forge does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from .machine import Machine
from .modules import MappedImage
from .plan import PageWrite, VadPlan

if TYPE_CHECKING:
    from .layout import StructBuffer
    from .obmanager import ObjectManager

PAGE = 0x1000
CONDITIONS = {"execute": 0, "write": 1, "io": 2, "read_write": 3}
LENGTHS = {1: 0, 2: 1, 8: 2, 4: 3}
SCOPES = {"local": 1, "global": 2, "local|global": 3}
APC_VIA = ("NtQueueApcThread", "QueueUserAPC")
DISPATCHER = "ntdll.dll!RtlDispatchAPC"
USER_MODE = 1
FILE_FLAGS = ("deleted", "transacted")


class ImplantKeyError(ValueError):
    """A scenario's implant key that cannot be built; the message says which and why."""


# ---- scenario keys -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BreakpointSpec:
    address: str  # a frame-style name: module!Function(+off), region(+off)
    condition: str = "execute"
    length: int = 1
    scope: str = "local"
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class ApcSpec:
    routine: str  # a frame-style name
    argument: int = 0
    via: str = "NtQueueApcThread"


@dataclass(frozen=True, slots=True)
class PatchSpec:
    data: bytes
    export: str | None = None
    offset: int | None = None  # an RVA, when no export is named


@dataclass(frozen=True, slots=True)
class ThreadImplantSpec:
    breakpoints: tuple[BreakpointSpec, ...] = ()
    debug_active: bool | None = None  # None: set when a breakpoint is enabled
    apcs: tuple[ApcSpec, ...] = ()
    alertable: bool = False

    @property
    def empty(self) -> bool:
        return not self.breakpoints and not self.apcs and not self.alertable and self.debug_active is None


@dataclass(frozen=True, slots=True)
class ModuleImplantSpec:
    patches: tuple[PatchSpec, ...] = ()
    file_deleted: bool = False
    file_transacted: bool = False
    mapped_file: str | None = None


THREAD_KEYS = {"breakpoints", "debug_active", "apcs", "alertable"}
MODULE_KEYS = {"patches", "file_deleted", "file_transacted", "mapped_file"}
REGION_KEYS = {"pe", "pe_header"}


def thread_spec(table: dict, where: str) -> ThreadImplantSpec:
    """The implant keys of a ``[[process.thread]]`` table."""
    breakpoints = tuple(_breakpoint(b, f"{where}.breakpoints[{i}]") for i, b in enumerate(_list(table, "breakpoints", where)))
    if len(breakpoints) > 4:
        raise ImplantKeyError(f"{where}.breakpoints: a thread has four debug registers (Dr0-Dr3), not {len(breakpoints)}")
    debug_active = table.get("debug_active")
    if debug_active is not None and not isinstance(debug_active, bool):
        raise ImplantKeyError(f"{where}.debug_active: expected true or false")
    alertable = table.get("alertable", False)
    if not isinstance(alertable, bool):
        raise ImplantKeyError(f"{where}.alertable: expected true or false")
    apcs = tuple(_apc(a, f"{where}.apcs[{i}]") for i, a in enumerate(_list(table, "apcs", where)))
    return ThreadImplantSpec(breakpoints, debug_active, apcs, alertable)


def module_spec(table: dict, where: str) -> ModuleImplantSpec:
    """The implant keys of a ``[[process.module]]`` table."""
    patches = tuple(_patch(p, f"{where}.patches[{i}]") for i, p in enumerate(_list(table, "patches", where)))
    flags = {}
    for key in ("file_deleted", "file_transacted"):
        flags[key] = table.get(key, False)
        if not isinstance(flags[key], bool):
            raise ImplantKeyError(f"{where}.{key}: expected true or false")
    mapped = table.get("mapped_file")
    if mapped is not None and not isinstance(mapped, str):
        raise ImplantKeyError(f"{where}.mapped_file: expected the path of the file the image VAD maps")
    return ModuleImplantSpec(patches, flags["file_deleted"], flags["file_transacted"], mapped)


def region_pe(table: dict, where: str) -> tuple[str | None, bool]:
    """A region's ``pe`` (catalog module to lay out in it) and ``pe_header`` keys."""
    name, header = table.get("pe"), table.get("pe_header", True)
    if name is not None and not isinstance(name, str):
        raise ImplantKeyError(f"{where}.pe: expected a catalog module name (k32hook.dll)")
    if not isinstance(header, bool):
        raise ImplantKeyError(f"{where}.pe_header: expected true or false")
    if name is None and "pe_header" in table:
        raise ImplantKeyError(f"{where}.pe_header: only with `pe`")
    return name, header


def _list(table: dict, key: str, where: str) -> list:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ImplantKeyError(f"{where}.{key}: expected a list of tables")
    return value


def _keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ImplantKeyError(f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(allowed))})")


def _breakpoint(table: dict, where: str) -> BreakpointSpec:
    _keys(table, {"address", "condition", "length", "scope", "enabled"}, where)
    spec = BreakpointSpec(str(table.get("address", "")), table.get("condition", "execute"), table.get("length", 1),
                          table.get("scope", "local"), table.get("enabled", True))
    if not spec.address:
        raise ImplantKeyError(f"{where}: missing required key 'address' (module!Function or region+0xOFF)")
    if spec.condition not in CONDITIONS:
        raise ImplantKeyError(f"{where}.condition: one of {', '.join(CONDITIONS)}")
    if spec.length not in LENGTHS:
        raise ImplantKeyError(f"{where}.length: 1, 2, 4 or 8")
    if spec.scope not in SCOPES:
        raise ImplantKeyError(f"{where}.scope: one of {', '.join(SCOPES)}")
    return spec


def _apc(table: dict, where: str) -> ApcSpec:
    _keys(table, {"routine", "argument", "via"}, where)
    if not isinstance(table.get("routine"), str):
        raise ImplantKeyError(f"{where}: missing required key 'routine' (module!Function or region+0xOFF)")
    via = table.get("via", "NtQueueApcThread")
    if via not in APC_VIA:
        raise ImplantKeyError(f"{where}.via: one of {', '.join(APC_VIA)}")
    argument = table.get("argument", 0)
    if not isinstance(argument, int) or isinstance(argument, bool):
        raise ImplantKeyError(f"{where}.argument: expected an integer")
    return ApcSpec(table["routine"], argument, via)


def _patch(table: dict, where: str) -> PatchSpec:
    _keys(table, {"export", "offset", "hex"}, where)
    try:
        data = bytes.fromhex("".join(str(table.get("hex", "")).split()))
    except ValueError:
        raise ImplantKeyError(f"{where}.hex: not hex") from None
    if not data:
        raise ImplantKeyError(f"{where}: missing required key 'hex' (the bytes written over the code)")
    if ("export" in table) == ("offset" in table):
        raise ImplantKeyError(f"{where}: name either `export` or `offset` (an RVA)")
    return PatchSpec(data, table.get("export"), table.get("offset"))


# ---- plans ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class ThreadImplants:
    """What a thread's kernel objects hold: debug registers (Dr0-Dr3, Dr7), the ActiveDR7 flag,
    queued user APCs (routine, context, arguments) and the alertable wait."""

    debug: tuple[int, int, int, int, int] | None = None  # dr0..dr3, dr7
    debug_active: bool = False
    apcs: list[tuple[int, int, int, int]] = field(default_factory=list)  # normal routine, context, arg1, arg2
    alertable: bool = False


def thread_plan(spec: ThreadImplantSpec, resolve: Callable[[str], int], dispatcher: int | None) -> ThreadImplants | None:
    """Resolve a thread's implant keys to addresses (``resolve`` names frames as the stacks do)."""
    if spec.empty:
        return None
    plan = ThreadImplants(alertable=spec.alertable)
    if spec.breakpoints:
        addresses, dr7 = [0, 0, 0, 0], 0
        for index, bp in enumerate(spec.breakpoints):
            addresses[index] = resolve(bp.address)
            if bp.enabled:
                dr7 |= SCOPES[bp.scope] << (2 * index)
            dr7 |= (CONDITIONS[bp.condition] | LENGTHS[bp.length] << 2) << (16 + 4 * index)
        plan.debug = (*addresses, dr7)
    enabled = plan.debug is not None and bool(plan.debug[4] & 0xFF)
    plan.debug_active = enabled if spec.debug_active is None else spec.debug_active
    for apc in spec.apcs:
        routine = resolve(apc.routine)
        if apc.via == "QueueUserAPC":
            if dispatcher is None:
                raise ImplantKeyError(f"APC via QueueUserAPC needs {DISPATCHER} in the process")
            plan.apcs.append((dispatcher, routine, apc.argument, 0))
        else:
            plan.apcs.append((routine, apc.argument, 0, 0))
    return plan


def patch_image(image: MappedImage, patches: tuple[PatchSpec, ...]) -> set[int]:
    """Write the patches over the image's bytes; the page offsets they touch (their private pages)."""
    pages = set()
    for patch in patches:
        if patch.export and patch.export not in image.entry.functions:
            raise ImplantKeyError(f"{image.entry.name} has no export '{patch.export}'")
        rva = image.entry.functions[patch.export].rva if patch.export else patch.offset
        if rva is None or not 0 <= rva <= image.size - len(patch.data):
            raise ImplantKeyError(f"{image.entry.name}: a patch at rva {rva} lies outside the image")
        image.data[rva : rva + len(patch.data)] = patch.data
        pages |= {p & ~(PAGE - 1) for p in range(rva, rva + len(patch.data))}
    return pages


def private_pages(writes: list[PageWrite], image: MappedImage, pages: set[int]) -> list[PageWrite]:
    """The image's page writes with the patched pages made private: a frame of their own, dirty."""
    out = []
    for write in writes:
        if write.va - image.base in pages:
            write = PageWrite(write.va, write.data, writable=False, executable=write.executable, dirty=True, share=None)
        out.append(write)
    return out


def file_flags(spec: ModuleImplantSpec) -> tuple[str, ...]:
    return tuple(flag for flag, on in zip(FILE_FLAGS, (spec.file_deleted, spec.file_transacted)) if on)


def mapped_vad(vad: VadPlan, spec: ModuleImplantSpec, nt_name: Callable[[str], str], patched_pages: int) -> VadPlan:
    """The module's image VAD with the file it maps, its file object's flags and its private pages."""
    vad.commit_pages += patched_pages
    vad.file_flags = file_flags(spec)
    if spec.mapped_file:
        vad.file_path = nt_name(spec.mapped_file)
    return vad


def lay_out_pe(image: MappedImage, size: int, header: bool) -> bytes:
    """A catalog module's mapped image as region content (relocated to the region by the caller)."""
    if image.size > size:
        raise ImplantKeyError(f"{image.entry.name} ({image.size:#x} bytes) does not fit in a {size:#x}-byte region")
    data = bytearray(image.data)
    if not header:
        data[:PAGE] = bytes(PAGE)
    return bytes(data)


# ---- writers ---------------------------------------------------------------------------------------


def write_thread_flags(et: "StructBuffer", implants: ThreadImplants | None) -> None:
    """KTHREAD flags: Header.ActiveDR7 (debug registers saved on kernel entry), Alertable, WaitMode."""
    if implants is None:
        return
    if implants.debug_active and not et.set_if("Tcb.Header.ActiveDR7", 1):
        et.set("Tcb.Header.DebugActive", et.get("Tcb.Header.DebugActive") | 1)
    if implants.alertable:
        et.set("Tcb.Alertable", 1)
        et.set_if("Tcb.WaitMode", USER_MODE)
    if implants.apcs:
        et.set_if("Tcb.ApcState.UserApcPending", 1)


def write_trap_debug(frame: "StructBuffer", implants: ThreadImplants | None) -> None:
    """Dr0-Dr3 and Dr7 in the trap frame (where KiSaveDebugRegisterState puts the user's)."""
    if implants is None or implants.debug is None:
        return
    for name, value in zip(("Dr0", "Dr1", "Dr2", "Dr3", "Dr7"), implants.debug):
        frame.set(name, value)


def write_apcs(m: Machine, ethread_va: int, implants: ThreadImplants | None) -> None:
    """Queue the thread's user APCs: one KAPC each in the pool, linked on ApcListHead[UserMode]
    (an empty list is still a list: its head points at itself, as the kernel initialises it)."""
    link_size = m.size("_LIST_ENTRY")
    head = ethread_va + m.offset("_ETHREAD", "Tcb.ApcState.ApcListHead")
    entries = []
    for routine, context, argument1, argument2 in (implants.apcs if implants is not None else []):
        kapc = m.struct("_KAPC")
        va = m.pool.alloc(len(kapc), b"ApcR")
        kapc.set_if("Type", 0x12)  # ApcObject
        kapc.set_if("Size", len(kapc))
        kapc.set("Thread", ethread_va)
        kapc.set("NormalRoutine", routine)
        kapc.set("NormalContext", context)
        kapc.set("SystemArgument1", argument1)
        kapc.set("SystemArgument2", argument2)
        kapc.set_if("ApcMode", USER_MODE)
        kapc.set_if("Inserted", 1)
        m.kput(va, kapc)
        entries.append(va + m.offset("_KAPC", "ApcListEntry"))
    m.link_list(m.system_space, head, [])  # the kernel-mode list: empty
    m.link_list(m.system_space, head + link_size, entries)


def mark_file_object(m: Machine, objects: "ObjectManager", file_object: int, flags: tuple[str, ...]) -> None:
    """DeletePending, or a TxF transaction in the FileObjectExtension, on a mapping's own file object."""
    if "deleted" in flags:
        m.kwrite(file_object + m.offset("_FILE_OBJECT", "DeletePending"), b"\x01")
    if "transacted" in flags:
        transaction = objects.new_object("TmTx", 0x200, b"TmTx")
        block = m.struct("_TXN_PARAMETER_BLOCK")
        block_va = m.pool.alloc(len(block), b"TxPb")
        block.set("Length", len(block))
        block.set("TransactionObject", transaction)
        m.kput(block_va, block)
        extension = m.struct("_IOP_FILE_OBJECT_EXTENSION")
        extension_va = m.pool.alloc(len(extension), b"FOCX")
        slot = m.layout.enum_value("_FILE_OBJECT_EXTENSION_TYPE", "FoExtTypeTransactionParams")
        pointer = extension.offset("FoExtPerTypeExtension") + 8 * slot
        extension.data[pointer : pointer + 8] = block_va.to_bytes(8, "little")
        m.kput(extension_va, extension)
        m.kwrite(file_object + m.offset("_FILE_OBJECT", "FileObjectExtension"), extension_va.to_bytes(8, "little"))
