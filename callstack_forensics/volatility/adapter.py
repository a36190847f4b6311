"""The stack engine's memory interface, implemented with Volatility 3.

This is the only place that knows Volatility's objects: an ``_EPROCESS`` becomes a
:class:`ProcessMemory` (process layer reads, VADs as regions, loader-list modules
cross-checked against image VADs) and each ``_ETHREAD`` a :class:`ThreadInfo`
whose user context comes from ``_KTHREAD.TrapFrame`` -> ``_KTRAP_FRAME`` through
the symbol table, checked against the TEB's stack bounds. Whatever cannot be read
becomes a note on the thread, never an exception out of the plugin.
"""

from __future__ import annotations

import datetime as dt
import logging
import struct
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterable, Iterator

from volatility3.framework import constants, exceptions, interfaces
from volatility3.framework.objects import utility
from volatility3.framework.symbols.windows import extensions
from volatility3.plugins.windows import handles, info, pslist, threads, vadinfo

from ..engine.pe import ImageError, Section, header_layout, section_protection
from ..memory import (
    HandleInfo,
    MemoryMissing,
    Module,
    ProcessInfo,
    ProcessMemory,
    Region,
    RegionKind,
    UNKNOWN_PROTECTION,
    ThreadInfo,
    merge_sorted,
    page_protection,
)
from ..memory.implantstate import MappedFile
from ..memory.wow64context import read_wow64_context
from .token import SidsLayout, integrity_sid, user_sid

from . import fileobjects
from .threadstate import ThreadStateReader, reader_for
from .fastread import KERNEL_HELD_PAGES, FastReads
from .pagetables import USER_TOP, PageTableWalk, PresentMap
from .rawstructs import (
    LayoutUnknown,
    LoaderEntry,
    LoaderLayout,
    ParametersLayout,
    ThreadLayout,
    TreeTooDeep,
    Vad,
    VadLayout,
    unicode_string,
    vad_nodes,
)

vollog = logging.getLogger(__name__)

USER_LIMIT = 0x7FFFFFFFFFFF
HAS_FIBER_DATA = 0x4  # TEB.SameTebFlags: the thread was converted to a fiber
FIBER_STACK_BASE = 0x10  # x64 FIBER: FiberData, ExceptionList, StackBase, StackLimit, DeallocationStack
VAD_TYPE_IMAGE = 2
# x86 CONTEXT is an ABI layout (winnt.h), not a kernel-build one: these offsets never change.
READ_ERRORS = (exceptions.InvalidAddressException, exceptions.PagedInvalidAddressException)
OBJECT_ERRORS = (*READ_ERRORS, AttributeError, ValueError, TypeError, IndexError, struct.error)
FILETIME_EPOCH = dt.datetime(1601, 1, 1, tzinfo=dt.timezone.utc)
IMPERSONATION_FLAG = 0x8  # CrossThreadFlags.ActiveImpersonationInfo on layouts without the bit field


def _str(value: Any) -> str | None:
    if isinstance(value, interfaces.renderers.BaseAbsentValue) or value is None:
        return None
    return str(value)


def filetime(value: int) -> dt.datetime | None:
    """A FILETIME (100 ns since 1601) as an aware datetime, microseconds kept; None for 0 or nonsense."""
    if value <= 0:
        return None
    try:
        return FILETIME_EPOCH + dt.timedelta(microseconds=value // 10)
    except OverflowError:
        return None


def system_time(context: interfaces.context.ContextInterface, kernel_module_name: str) -> dt.datetime | None:
    """When the image was taken: KUSER_SHARED_DATA.SystemTime."""
    try:
        kuser = info.Info.get_kuser_structure(context, kernel_module_name)
        low, high = int(kuser.SystemTime.LowPart), int(kuser.SystemTime.High1Time)
    except OBJECT_ERRORS:
        return None
    return filetime((high << 32) | low)


def token_user(token: Any) -> str | None:
    """The first SID (the user) of a _TOKEN."""
    try:
        return next(iter(token.get_sids()), None)
    except OBJECT_ERRORS:
        return None


def coalesce(ranges: Iterable[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Sorted ranges widened to whole pages, touching ones joined."""
    low = high = None
    for first, stop in ranges:
        page, stop = first & ~0xFFF, (stop + 0xFFF) & ~0xFFF
        if high is not None and page <= high:
            high = max(high, stop)
            continue
        if high is not None:
            yield low, high
        low, high = page, stop
    if high is not None:
        yield low, high


class VolatilityProcess(ProcessMemory):
    """One ``_EPROCESS`` seen through its process layer."""

    def __init__(self, context: interfaces.context.ContextInterface, kernel_module_name: str, proc: Any,
                 object_types: "ObjectTypes | None" = None) -> None:
        self._context = context
        self._kernel = context.modules[kernel_module_name]
        self._kernel_module_name = kernel_module_name
        self._proc = proc
        self._object_types = object_types
        self._headers = object_types.headers if object_types is not None else HeaderLayouts()
        self.notes: list[str] = []
        self._layer_name = proc.add_process_layer()
        self._layer = FastReads(context.layers[self._layer_name])
        self.process = self._process_info()

    # ---- identity --------------------------------------------------------

    def _process_info(self) -> ProcessInfo:
        proc = self._proc
        name = utility.array_to_string(proc.ImageFileName)
        path = cmdline = directory = None
        try:
            params = proc.get_peb().ProcessParameters
            strings = self._raw_parameters(params)
            if strings is None:  # not in one piece: Volatility's objects, member by member
                path = _str(params.ImagePathName.get_string())
                cmdline = _str(params.CommandLine.get_string())
                directory = self._member(lambda: _str(params.CurrentDirectory.DosPath.get_string()))
            else:  # the same reads in the same order, from the structure's bytes
                image, command, current = strings
                path = unicode_string(self._layer, *image)
                cmdline = unicode_string(self._layer, *command)
                directory = self._member(lambda: unicode_string(self._layer, *current))
        except READ_ERRORS:
            self.notes.append("PEB or process parameters not readable")
        try:
            wow64 = bool(proc.get_is_wow64())
        except (AttributeError, *READ_ERRORS):
            wow64 = False
        return ProcessInfo(
            pid=int(proc.UniqueProcessId),
            name=name,
            path=path,
            command_line=cmdline,
            ppid=int(proc.InheritedFromUniqueProcessId),
            is_wow64=wow64,
            create_time=self._member(lambda: filetime(int(proc.CreateTime.QuadPart))),
            user_sid=self._member(lambda: self._token_user(proc.Token.dereference().cast("_TOKEN"))),
            session=self._member(self._session),
            clone_root=self._member(self._clone_root),
            image_device_path=self._member(self._image_device_path),
            signature_level=self._member(lambda: int(proc.SignatureLevel)) if proc.has_member("SignatureLevel") else None,
            object_address=int(proc.vol.offset),
            working_directory=directory or None,
            integrity_sid=self._member(lambda: integrity_sid(
                self._context, self._kernel.layer_name, proc.Token.dereference().cast("_TOKEN"))),
        )

    def _raw_parameters(self, params: Any) -> tuple[tuple[int, int], ...] | None:
        """(Length, Buffer) of the image path, command line and current directory where the
        layout is known and the parameters read in one piece (rawstructs.ParametersLayout)."""
        layout = self._kernel_wide(("parameters_layout", self._layer.address_mask), self._parameters_layout)
        if layout is None or params.vol.native_layer_name != self._layer_name:
            return None
        return layout.strings(self._layer, int(params) & self._layer.address_mask)

    def _parameters_layout(self) -> ParametersLayout | None:
        try:
            return ParametersLayout.resolve(self._context, self._kernel.symbol_table_name, self._layer.address_mask)
        except (LayoutUnknown, exceptions.SymbolError, AttributeError, KeyError, ValueError):
            return None

    @staticmethod
    def _member(read: Any) -> Any:
        """A field read that may fail on a smeared or partial object: None rather than an error."""
        try:
            return read()
        except OBJECT_ERRORS:
            return None

    def _session(self) -> int | None:
        value = self._proc.get_session_id()
        return None if isinstance(value, interfaces.renderers.BaseAbsentValue) else int(value)

    def _clone_root(self) -> bool | None:
        proc = self._proc
        if not proc.has_member("CloneRoot"):
            return None
        root = proc.CloneRoot
        return bool(int(root.Root) if root.has_member("Root") else int(root))

    def _image_device_path(self) -> str | None:
        proc = self._proc
        if proc.has_member("ImageFilePointer") and int(proc.ImageFilePointer):
            return _str(proc.ImageFilePointer.dereference().cast("_FILE_OBJECT").file_name_with_device())
        audit = proc.SeAuditProcessCreationInfo.ImageFileName
        return _str(audit.dereference().Name.get_string()) if int(audit) else None

    def _kernel_wide(self, key: tuple, make: Any) -> Any:
        """What depends on the kernel alone (its symbol table, MmProtectToValue), made once per
        image on the object every process shares; made here when there is none."""
        return make() if self._object_types is None else self._object_types.shared(key, make)

    @property
    def eprocess(self) -> Any:
        return self._proc

    # ---- memory ------------------------------------------------------------

    def read(self, address: int, size: int) -> bytes:
        try:
            return self._layer.read(address, size, pad=False)
        except READ_ERRORS as exc:
            raise MemoryMissing(getattr(exc, "invalid_address", address)) from exc

    def present_ranges(self, start: int, end: int) -> Iterable[tuple[int, int]]:
        """The pages of the range the page tables may map: from the user half's tables, read
        once per process 512 entries at a time (pagetables.py) where the layer allows, else from
        Volatility's own mapping walk, which skips a whole missing table in one step. Never fewer
        pages than :meth:`read` serves: both end in the same translation."""
        present = self._present_map
        if present is None or not 0 <= start < end <= USER_TOP:
            return coalesce((offset, offset + length) for offset, length, _, _, _ in
                            self._layer.mapping(start, end - start, ignore_errors=True))
        return present.within(start, end)

    @cached_property
    def _present_map(self) -> "PresentMap | None":
        """Every user-half range the page tables may map, walked once for all the regions a scan
        asks about (one walk per region paid the descent from the top table each time)."""
        walk = PageTableWalk(self._layer.layer)
        if not walk.usable(0, USER_TOP):
            return None
        return PresentMap(list(coalesce(walk.candidates(0, USER_TOP))))

    @cached_property
    def _vads(self) -> list[Any]:
        out = []
        try:
            for vad in self._proc.get_vad_root().traverse():
                out.append(vad)
        except READ_ERRORS as exc:
            self.notes.append(f"VAD tree partly unreadable ({exc})")
        except RuntimeError as exc:  # Volatility gives up past depth 100: a crafted chain, not a tree
            self.notes.append(f"VAD tree cut after {len(out)} nodes ({exc})")
        return out

    @cached_property
    def _regions(self) -> list[Region]:
        protect_values = self._kernel_wide(("protect_values",), lambda: _int_table(
            vadinfo.VadInfo.protect_values(self._context, self._kernel.layer_name, self._kernel.symbol_table_name)))
        regions = self._raw_vad_regions(protect_values)
        if regions is None:  # a layout or tree the raw walk does not take: Volatility's traversal
            regions = []
            for vad in self._vads:
                self._add_region(regions, vad, protect_values)
        regions = [part for region in regions for part in self._split_image(region)]
        merged = merge_sorted(regions)
        if len(merged) != len(regions):
            self.notes.append(f"{len(regions) - len(merged)} overlapping or empty VADs ignored")
        return merged

    def _raw_vad_regions(self, protect_values: Any) -> list[Region] | None:
        """The VADs as regions, the tree walked and each VAD read as raw bytes (one read per node,
        no Volatility object built or kept); None when the layout or the tree is one the raw walk
        leaves to Volatility (see rawstructs). A VAD whose bytes do not read in one piece goes
        through Volatility's objects, which say member by member what is missing."""
        try:
            root = self._proc.get_vad_root()
            layer = self._reads_on(root.vol.layer_name)
            type_name = root.vol.type_name.split(constants.BANG)[-1]
            layout = self._kernel_wide(("vad_layout", type_name, layer.address_mask), lambda: VadLayout.resolve(
                self._context, self._kernel.symbol_table_name, type_name, layer.address_mask))
            nodes = vad_nodes(layer, int(root.vol.offset), layout)
        except (LayoutUnknown, TreeTooDeep, exceptions.SymbolError, AttributeError, *READ_ERRORS):
            return None
        regions: list[Region] = []
        for address, kind in nodes:
            vad = layout.read(layer, address, kind)
            region = None if vad is None else _vad_region(vad, protect_values)
            if region is not None:
                regions.append(region)
                continue
            obj = self._context.object(
                self._kernel.symbol_table_name + constants.BANG + ("_MMVAD_SHORT" if kind == "short" else "_MMVAD"),
                layer_name=root.vol.layer_name, offset=address, native_layer_name=root.vol.native_layer_name)
            self._add_region(regions, obj, protect_values)
        return regions

    def _add_region(self, regions: list[Region], vad: Any, protect_values: Any) -> None:
        try:
            regions.append(self._region(vad, protect_values))
        except (*READ_ERRORS, AttributeError, ValueError) as exc:
            self.notes.append(f"VAD at {vad.vol.offset:#x} unreadable ({exc})")

    def _region(self, vad: Any, protect_values: Any) -> Region:
        start, end = int(vad.get_start()), int(vad.get_end()) + 1
        protection = _protection(int(vad.Protection), protect_values)
        private = bool(vad.get_private_memory())
        path = _str(vad.get_file_name())
        if private:
            kind = RegionKind.PRIVATE
        elif _vad_type(vad) == VAD_TYPE_IMAGE:
            kind = RegionKind.IMAGE
        else:
            kind = RegionKind.MAPPED
        private_exec = None
        if kind == RegionKind.IMAGE:
            # Copy-on-write pages an image VAD has made private (patched or stomped code) are
            # charged to it; a clean image has none.
            private_exec = int(vad.get_commit_charge()) * 0x1000
        file_object = None if private else self._member(lambda: _file_object_of(vad))
        return Region(start, end, protection, kind, path, start, private_exec, file_object)

    def _split_image(self, region: Region) -> list[Region]:
        """An image VAD as its sections, each with the section's page protection. The VAD's own
        protection (EXECUTE_WRITECOPY for every image) is the mapping's, not any page's: when
        the headers that give the sections cannot be read (real images often lack the header
        page), the pages' protection is unknown, never RWX."""
        if region.kind != RegionKind.IMAGE:
            return [region]
        try:
            size_of_headers, sections = self._headers.get(self._layer.read(region.start, 0x1000, pad=False))
        except READ_ERRORS:
            return [region.part(region.start, region.end, UNKNOWN_PROTECTION)]
        except ImageError:
            return [region]
        parts = [region.part(region.start, min(region.end, region.start + max(size_of_headers, 0x1000)), "R--")]
        for section in sorted(sections, key=lambda s: s.rva):
            start = region.start + (section.rva & ~0xFFF)
            end = min(region.end, (region.start + section.rva + section.size + 0xFFF) & ~0xFFF)
            if start < end:
                parts.append(region.part(start, end, section_protection(section.characteristics)))
        return parts

    def regions(self) -> list[Region]:
        return self._regions

    @cached_property
    def _file_objects(self) -> fileobjects.FileObjectReader | None:
        return self._kernel_wide(("file_objects",), lambda: fileobjects.reader_for(
            self._context, self._kernel.symbol_table_name, self._kernel_layer))

    def mapped_file(self, allocation_base: int) -> MappedFile | None:
        """The FILE_OBJECT of the image or file mapping at ``allocation_base`` (issue 15, check 10)."""
        region = next((r for r in self.regions_of_allocation(allocation_base) if r.file_object), None)
        if region is None or self._file_objects is None:
            return None
        return self._file_objects.read(region.file_object)

    # ---- modules --------------------------------------------------------------

    @cached_property
    def _modules(self) -> list[Module]:
        listed: dict[int, Module] = {}
        try:
            for module in self._loader_modules():
                if module is not None and module.base not in listed:
                    listed[module.base] = module
                if len(listed) > 4096:
                    self.notes.append("loader list longer than 4096 entries: cut")
                    break
        except READ_ERRORS as exc:
            self.notes.append(f"loader list unreadable ({exc})")
        for start, end, path in self._image_vads():
            if start not in listed and self._is_image_at(start, path):
                listed[start] = Module(start, end - start, path or "Unknown", linked=False)
        return sorted(listed.values(), key=lambda m: m.base)

    def _image_vads(self) -> list[tuple[int, int, str | None]]:
        """(start, end, file) of each image VAD, its split sections joined again."""
        out: list[tuple[int, int, str | None]] = []
        for region in self.regions():
            if region.kind != RegionKind.IMAGE:
                continue
            if out and region.allocation_base == out[-1][0]:
                out[-1] = (out[-1][0], region.end, out[-1][2])
            else:
                out.append((region.allocation_base if region.allocation_base is not None else region.start,
                            region.end, region.path))
        return out

    def _is_image_at(self, base: int, path: str | None) -> bool:
        """An image VAD no loader list names is a module when its header says MZ, or, when the
        header page is not in the image, when the VAD names its file: the VAD says what is mapped
        there even where the page is gone."""
        try:
            return self._layer.read(base, 2, pad=False) == b"MZ"
        except READ_ERRORS:
            return bool(path)

    def _loader_modules(self) -> Iterator[Module | None]:
        """The loader list's modules in load order (None for an entry that is no usable module)."""
        layout = self._loader_layout
        if layout is None or self.process.is_wow64:  # a WOW64 process has a second, 32-bit list
            for entry in self._proc.load_order_modules():
                yield self._ldr_module(entry)
            return
        # EPROCESS.load_order_modules, the list walked and each entry read as raw bytes
        try:
            head = self._proc.get_peb().Ldr.InLoadOrderModuleList
        except exceptions.InvalidAddressException:
            return
        # the process's own short reads: an entry's members and name are a few reads in one page
        layer = self._layer if head.vol.layer_name == self._layer_name else self._reads_on(head.vol.layer_name)
        for address in layout.entries(layer, int(head.vol.offset)):
            entry = layout.read(layer, address)
            if entry is not None:
                yield self._raw_ldr_module(entry)
                continue
            obj = self._context.object(self._kernel.symbol_table_name + constants.BANG + "_LDR_DATA_TABLE_ENTRY",
                                       layer_name=head.vol.layer_name, offset=address,
                                       native_layer_name=head.vol.layer_name)
            try:
                obj.DllBase  # Volatility skips an entry whose DllBase does not read
            except exceptions.InvalidAddressException:
                continue
            yield self._ldr_module(obj)

    @cached_property
    def _loader_layout(self) -> LoaderLayout | None:
        try:
            return LoaderLayout.resolve(self._context, self._kernel.symbol_table_name, self._layer.address_mask)
        except (LayoutUnknown, exceptions.SymbolError, AttributeError, KeyError, ValueError):
            return None

    def _raw_ldr_module(self, entry: LoaderEntry) -> Module | None:
        """_ldr_module for an entry read as raw bytes."""
        if entry.path is None:  # a name that does not read drops the entry, as in _ldr_module
            return None
        if not entry.base or not entry.size or entry.base > USER_LIMIT:
            return None
        return Module(entry.base, entry.size, entry.path or "Unknown",
                      timestamp=entry.timestamp or None,
                      load_time=None if entry.load_time is None else filetime(entry.load_time),
                      signing_level=entry.signing_level)

    def _ldr_module(self, entry: Any) -> Module | None:
        try:
            base = int(entry.DllBase)
            size = int(entry.SizeOfImage)
            path = _str(entry.FullDllName.get_string()) or _str(entry.BaseDllName.get_string())
        except READ_ERRORS:
            return None
        if not base or not size or base > USER_LIMIT:
            return None
        timestamp = None
        if entry.has_member("TimeDateStamp"):
            try:
                timestamp = int(entry.TimeDateStamp) or None
            except READ_ERRORS:
                timestamp = None
        load_time = self._member(lambda: filetime(int(entry.LoadTime.QuadPart))) if entry.has_member("LoadTime") else None
        signing = self._member(lambda: int(entry.SigningLevel)) if entry.has_member("SigningLevel") else None
        return Module(base, size, path or "Unknown", timestamp=timestamp, load_time=load_time, signing_level=signing)

    def modules(self) -> list[Module]:
        return self._modules

    # ---- threads ----------------------------------------------------------------

    def threads(self) -> list[ThreadInfo]:
        out = []
        layout = self._thread_layout
        try:
            if layout is None:
                for ethread in threads.Threads.list_threads(self._context, self._kernel_module_name, self._proc):
                    out.append(self._thread(ethread))
            else:  # the same list, without Volatility keeping an object per link alive behind the process
                layer = self._reads_on(self._proc.vol.layer_name)
                for offset in layout.threads(layer, int(self._proc.vol.offset)):
                    out.append(self._thread_at(offset))
        except READ_ERRORS as exc:
            self.notes.append(f"thread list unreadable after {len(out)} threads ({exc})")
        return out

    def _thread_at(self, offset: int) -> ThreadInfo:
        fast = self._raw_thread(offset)
        if fast is not None:
            return fast
        return self._thread(self._context.object(
            self._kernel.symbol_table_name + constants.BANG + "_ETHREAD", layer_name=self._proc.vol.layer_name,
            offset=offset, native_layer_name=self._proc.vol.layer_name))

    @cached_property
    def _kernel_layer(self) -> FastReads:
        """One per image: the kernel's pages (ETHREADs, tokens, VADs) are the same for every process,
        and so are the translations FastReads keeps and the pages it holds."""
        name = self._kernel.layer_name
        return self._kernel_wide(("fast_reads", name), lambda: FastReads(self._context.layers[name],
                                                                         hold=KERNEL_HELD_PAGES))

    def _reads_on(self, name: str) -> FastReads:
        """Short reads of the layer ``name``: the image's shared kernel reader when it is the
        kernel's layer (where kernel objects normally live), else a reader of its own."""
        return self._kernel_layer if name == self._kernel.layer_name else FastReads(self._context.layers[name])

    @cached_property
    def _thread_layout(self) -> ThreadLayout | None:
        """Where the thread members lie, from the symbol table; None leaves threads to Volatility's objects."""
        try:
            mask = self._context.layers[self._kernel.layer_name].address_mask
            return self._kernel_wide(("thread_layout", mask), lambda: ThreadLayout.resolve(
                self._context, self._kernel.symbol_table_name, mask))
        except (LayoutUnknown, exceptions.SymbolError, AttributeError, KeyError, ValueError):
            return None

    def _thread(self, ethread: Any) -> ThreadInfo:
        fast = self._raw_thread(int(ethread.vol.offset))
        if fast is not None:
            return fast
        try:
            tid = int(ethread.Cid.UniqueThread)
        except READ_ERRORS:
            return ThreadInfo(-1, note=f"ETHREAD at {ethread.vol.offset:#x} unreadable")
        info = ThreadInfo(tid, extra={"ethread": ethread.vol.offset}, object_address=int(ethread.vol.offset))
        info.create_time = self._member(lambda: filetime(int(ethread.CreateTime.QuadPart)))
        info.impersonation_sid = self._member(lambda: self._impersonation(ethread))
        try:
            tcb = ethread.Tcb
            info.state = _str(tcb.get_state())
            info.wait_reason = _str(tcb.get_wait_reason())
            if tcb.has_member("SystemCallNumber"):
                info.syscall_number = int(tcb.SystemCallNumber)
            info.start_address = int(ethread.StartAddress)
            if ethread.has_member("Win32StartAddress"):
                info.win32_start_address = int(ethread.Win32StartAddress)
            teb = int(tcb.Teb)
        except READ_ERRORS as exc:
            info.note = f"KTHREAD unreadable ({exc})"
            return info
        if not teb:
            info.note = "system thread: no TEB, no user-mode context"
            return info
        info.teb = teb
        self._stack_bounds(info, teb)
        self._trap_context(info, tcb)
        self._implant_state(info, int(ethread.vol.offset), self._member(lambda: int(tcb.TrapFrame)) or 0)
        if self.process.is_wow64:
            self._wow64_context(info, teb)
        return info

    @cached_property
    def _thread_state(self) -> ThreadStateReader | None:
        return self._kernel_wide(("thread_state",), lambda: reader_for(
            self._context, self._kernel.symbol_table_name, self._kernel_layer))

    def _implant_state(self, info: ThreadInfo, ethread: int, trap_frame: int) -> None:
        """The thread's saved debug registers and user APC queue (issue 15, checks 7 and 8)."""
        if self._thread_state is not None:
            info.debug_registers, info.apc_state = self._thread_state.read(ethread, trap_frame)

    def _raw_thread(self, offset: int) -> ThreadInfo | None:
        """The thread read from one copy of its _ETHREAD's bytes (the members at the symbol table's
        offsets, values as Volatility's objects give them); None when the layout is unknown or the
        object does not read whole, so that Volatility's objects say member by member what is missing."""
        layout = self._thread_layout
        if layout is None:
            return None
        try:
            data = self._kernel_layer.read(offset + layout.start, layout.end - layout.start)
        except READ_ERRORS:
            return None

        row = layout.row.read(data)
        info = ThreadInfo(row["tid"], extra={"ethread": offset}, object_address=offset)
        info.create_time = filetime(row["create_time"])
        if "impersonation_bit" in row:
            active = bool(row["impersonation_bit"])
        else:
            active = bool(row["cross_thread_flags"] & IMPERSONATION_FLAG)
        pointer = row["impersonation_data"] & ~0x7
        info.impersonation_sid = self._member(lambda: self._impersonated_user(active, pointer))
        info.state, info.wait_reason = self._state_names(row["state"], row["wait_reason"])
        if "syscall_number" in row:
            info.syscall_number = row["syscall_number"]
        info.start_address = row["start_address"]
        if "win32_start_address" in row:
            info.win32_start_address = row["win32_start_address"]
        teb = row["teb"]
        if not teb:
            info.note = "system thread: no TEB, no user-mode context"
            return info
        info.teb = teb
        try:
            bounds = self._layer.read(teb + layout.teb_start, layout.teb_end - layout.teb_start, pad=False)
            info.stack_base = layout.stack_base.get(bounds, layout.teb_start)
            info.stack_limit = layout.stack_limit.get(bounds, layout.teb_start)
        except READ_ERRORS:
            self._stack_bounds(info, teb)
        self._trap_frame(info, row["trap_frame"])
        self._implant_state(info, offset, row["trap_frame"])
        if self.process.is_wow64:
            self._wow64_context(info, teb)
        return info

    @cached_property
    def _state_name_table(self) -> dict[tuple[int, int], tuple[str | None, str | None]]:
        return self._kernel_wide(("thread_state_names",), dict)

    def _state_names(self, state: int, wait_reason: int) -> tuple[str | None, str | None]:
        """Volatility's names for a thread's state and wait reason, from its own tables, asked once
        per image and pair of values (it builds both tables, 40 entries, on every call)."""
        names = self._state_name_table
        key = (state, wait_reason)
        if key not in names:
            values = _KThreadValues(state, wait_reason)
            names[key] = (_str(extensions.KTHREAD.get_state(values)), _str(extensions.KTHREAD.get_wait_reason(values)))
        return names[key]

    def _impersonation(self, ethread: Any) -> str | None:
        """The user of the token a thread impersonates (ClientSecurity, low 3 bits are flags)."""
        if ethread.has_member("ActiveImpersonationInfo"):
            active = bool(ethread.ActiveImpersonationInfo)
        else:
            active = bool(int(ethread.CrossThreadFlags) & IMPERSONATION_FLAG)
        pointer = int(ethread.ClientSecurity.ImpersonationData) & ~0x7
        return self._impersonated_user(active, pointer)

    def _impersonated_user(self, active: bool, pointer: int) -> str | None:
        if not active or not pointer:
            return None
        token = self._context.object(
            self._kernel.symbol_table_name + constants.BANG + "_TOKEN", layer_name=self._kernel.layer_name, offset=pointer
        )
        return self._token_user(token)

    def _token_user(self, token: Any) -> str | None:
        """The token's user SID: read raw (token.user_sid) where the token is in the kernel's layer
        and the symbol table has its members, else through Volatility's ``get_sids``; the same text."""
        layout = self._sids_layout
        kvo = self._context.layers[token.vol.layer_name].config.get("kernel_virtual_offset", None)
        if layout is None or token.vol.layer_name != self._kernel.layer_name or not kvo:
            return token_user(token)
        return user_sid(self._kernel_layer, int(token.vol.offset), layout)

    @cached_property
    def _sids_layout(self) -> SidsLayout | None:
        mask = self._context.layers[self._kernel.layer_name].address_mask
        return self._kernel_wide(("sids_layout", mask), lambda: SidsLayout.resolve(
            self._context, self._kernel.symbol_table_name, mask))

    # ---- handles ------------------------------------------------------------------

    def handle(self, value: int) -> HandleInfo | None:
        return self._handles.get(value)

    @cached_property
    def _handles(self) -> dict[int, HandleInfo]:
        types = self._object_types or ObjectTypes.read(self._context, self._kernel_module_name)
        out: dict[int, HandleInfo] = {}
        try:
            table = self._proc.ObjectTable
            for header in handles.Handles.handles(self._context, self._kernel_module_name, table):
                entry = types.resolve(header)
                if entry is not None:
                    out[int(header.HandleValue)] = entry
        except OBJECT_ERRORS as exc:
            self.notes.append(f"handle table partly unreadable ({exc})")
        return out

    def _stack_bounds(self, info: ThreadInfo, teb: int) -> None:
        try:
            obj = self._context.object(
                self._kernel.symbol_table_name + constants.BANG + "_TEB", layer_name=self._layer_name, offset=teb
            )
            info.stack_base = int(obj.NtTib.StackBase)
            info.stack_limit = int(obj.NtTib.StackLimit)
        except READ_ERRORS:
            info.note = "TEB not present: stack bounds unknown"

    def _trap_context(self, info: ThreadInfo, tcb: Any) -> None:
        self._trap_frame(info, int(tcb.TrapFrame))

    def _trap_frame(self, info: ThreadInfo, pointer: int) -> None:
        if not pointer:
            info.note = "no trap frame: the thread is not stopped on a kernel entry"
            return
        regs = self._raw_trap_registers(pointer)
        if regs is None:
            regs = self._trap_registers(info, pointer)
            if regs is None:
                return
        self._user_context(info, regs)

    def _raw_trap_registers(self, pointer: int) -> dict[str, int] | None:
        """The trap frame's registers from one read of its bytes; None to read them through objects."""
        layout = self._thread_layout
        if layout is None:
            return None
        try:
            raw = self._kernel_layer.read(pointer + layout.trap_start, layout.trap_end - layout.trap_start)
        except READ_ERRORS:
            return None
        return layout.trap_registers.read(raw)

    def _trap_registers(self, info: ThreadInfo, pointer: int) -> dict[str, int] | None:
        """The trap frame's registers through Volatility's objects (member by member)."""
        try:
            frame = self._context.object(
                self._kernel.symbol_table_name + constants.BANG + "_KTRAP_FRAME",
                layer_name=self._kernel.layer_name,
                offset=pointer,
            )
            regs = {"rip": int(frame.Rip), "rsp": int(frame.Rsp), "rbp": int(frame.Rbp)}
            for name in ("Rax", "Rcx", "Rdx", "R8", "R9", "R10", "R11"):
                if frame.has_member(name):
                    regs[name.lower()] = int(getattr(frame, name))
        except READ_ERRORS:
            info.note = f"trap frame at {pointer:#x} paged out"
            return None
        return regs

    def _user_context(self, info: ThreadInfo, regs: dict[str, int]) -> None:
        if regs["rip"] > USER_LIMIT or regs["rsp"] > USER_LIMIT:
            info.note = "trap frame holds a kernel-mode context (interrupted in the kernel)"
            return
        if info.stack_base and not (info.stack_limit or 0) - 0x1000 <= regs["rsp"] <= info.stack_base:
            info.note = (
                f"trap frame rsp {regs['rsp']:#x} outside the TEB's stack [{info.stack_limit or 0:#x}, {info.stack_base:#x}]"
            )
            info.fiber_stack = self._fiber_stack(info.teb)
        info.registers = regs

    def _fiber_stack(self, teb: int | None) -> tuple[int, int] | None:
        """(StackBase, StackLimit) of the fiber a thread runs, when its TEB says it runs fibers
        (SameTebFlags.HasFiberData; NtTib.FiberData then points at the FIBER, whose StackBase and
        StackLimit follow FiberData and ExceptionList). Read only for a thread whose RSP left the
        TEB's stack: the one case a fiber explains."""
        if not teb:
            return None
        try:
            obj = self._context.object(
                self._kernel.symbol_table_name + constants.BANG + "_TEB", layer_name=self._layer_name, offset=teb)
            if not obj.has_member("SameTebFlags") or not int(obj.SameTebFlags) & HAS_FIBER_DATA:
                return None
            fiber = int(obj.NtTib.FiberData)
            base, limit = struct.unpack("<QQ", self._layer.read(fiber + FIBER_STACK_BASE, 16, pad=False))
        except (READ_ERRORS + (struct.error,)):
            return None
        return (base, limit) if limit < base else None

    def _wow64_context(self, info: ThreadInfo, teb: int) -> None:
        try:
            info.wow64 = read_wow64_context(lambda address, size: self._layer.read(address, size, pad=False), teb)
        except (READ_ERRORS + (struct.error,)):
            info.note = (info.note + "; " if info.note else "") + "WOW64 CPU area not readable"


@dataclass(frozen=True, slots=True)
class _KThreadValues:
    """What Volatility's KTHREAD.get_state / get_wait_reason read, without building the object."""

    State: int
    WaitReason: int


class HeaderLayouts:
    """PE header layouts (SizeOfHeaders, sections) by the bytes of the header page, each parsed once.

    Why: every process maps the same system DLLs, and pefile's parse of one header costs more
    than the rest of the image VAD; a layout is a function of those bytes alone, so one parse
    serves every process that maps the same header.
    """

    def __init__(self) -> None:
        self._layouts: dict[bytes, tuple[int, list[Section]] | None] = {}

    def get(self, header: bytes) -> tuple[int, list[Section]]:
        """header_layout(header); ImageError when it is not a PE header."""
        if header not in self._layouts:
            try:
                self._layouts[header] = header_layout(header)
            except ImageError:
                self._layouts[header] = None
        found = self._layouts[header]
        if found is None:
            raise ImageError("not a PE header we can use")
        return found


class ObjectTypes:
    """What every process of an image shares, read once: the object-type map and header cookie
    (for handles) and the PE header layouts of the images the processes map."""

    def __init__(self, type_map: Any, cookie: Any, kernel: Any, context: interfaces.context.ContextInterface) -> None:
        self.type_map = type_map
        self.cookie = cookie
        self._kernel = kernel
        self._context = context
        self.headers = HeaderLayouts()
        self._shared: dict[tuple, Any] = {}

    def shared(self, key: tuple, make: Any) -> Any:
        """``make()`` once per image for ``key``: structure layouts and tables every process would
        otherwise rebuild from the symbol table (a fixed cost per process, 146 times on a real host)."""
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]

    @classmethod
    def read(cls, context: interfaces.context.ContextInterface, kernel_module_name: str) -> "ObjectTypes":
        type_map = handles.Handles.get_type_map(context=context, kernel_module_name=kernel_module_name)
        cookie = handles.Handles.find_cookie(context=context, kernel_module_name=kernel_module_name)
        return cls(type_map, cookie, context.modules[kernel_module_name], context)

    def resolve(self, header: Any) -> HandleInfo | None:
        """What one handle-table entry (an _OBJECT_HEADER) refers to; None when unreadable."""
        try:
            kind = header.get_object_type(self.type_map, self.cookie)
            if kind is None:
                return None
            body = header.Body
            access = int(header.GrantedAccess)
            address = int(body.vol.offset)
            if kind == "File":
                return HandleInfo(kind, _str(body.cast("_FILE_OBJECT").file_name_with_device()), address, access)
            if kind == "Key":
                return HandleInfo(kind, _str(body.cast("_CM_KEY_BODY").get_full_key_name()), address, access)
            if kind == "Section":
                name, image = self._section(body)
                return HandleInfo(kind, name, address, access, image_section=image)
            if kind == "Process":
                return HandleInfo(kind, None, address, access, pid=int(body.cast("_EPROCESS").UniqueProcessId))
            if kind == "Thread":
                return HandleInfo(kind, None, address, access, pid=int(body.cast("_ETHREAD").Cid.UniqueProcess))
            return HandleInfo(kind, self._name_info(header), address, access)
        except OBJECT_ERRORS:
            return None

    @staticmethod
    def _name_info(header: Any) -> str | None:
        try:
            return _str(header.NameInfo.Name.String)
        except OBJECT_ERRORS:
            return None

    def _section(self, body: Any) -> tuple[str | None, bool | None]:
        """A section's backing file and whether it is an image section (its control area's flags)."""
        table = self._kernel.symbol_table_name + constants.BANG
        section = body.cast("_SECTION") if self._kernel.has_type("_SECTION") else None
        if section is not None and section.has_member("u1"):
            control = int(section.u1.ControlArea) & ~0x3
        else:
            segment = body.cast("_SECTION_OBJECT").Segment.dereference().cast("_SEGMENT_OBJECT")
            control = int(segment.ControlArea)
        if not control:
            return None, None
        area = self._context.object(table + "_CONTROL_AREA", layer_name=self._kernel.layer_name, offset=control)
        image = bool(area.u.Flags.Image)
        pointer = int(area.FilePointer.Value) & ~0xF if area.FilePointer.has_member("Value") else int(area.FilePointer)
        if not pointer:
            return None, image
        file_object = self._context.object(table + "_FILE_OBJECT", layer_name=self._kernel.layer_name, offset=pointer)
        return _str(file_object.file_name_with_device()), image


def _vad_region(vad: Vad, protect_values: Any) -> Region | None:
    """VolatilityProcess._region for a VAD read as raw bytes; None where that needs the objects
    (an image VAD on a layout without a commit charge: they say why)."""
    if vad.private:
        kind = RegionKind.PRIVATE
    elif vad.vad_type == VAD_TYPE_IMAGE:
        kind = RegionKind.IMAGE
    else:
        kind = RegionKind.MAPPED
    private_exec = None
    if kind == RegionKind.IMAGE:
        if vad.commit_charge is None:
            return None
        private_exec = vad.commit_charge * 0x1000
    return Region(vad.start, vad.end + 1, _protection(vad.protection, protect_values), kind, vad.file_name, vad.start,
                  private_exec, vad.file_object)


def _file_object_of(vad: Any) -> int | None:
    """A long VAD's FILE_OBJECT through Volatility's objects (Subsection -> ControlArea -> FilePointer)."""
    control = vad.Subsection.ControlArea
    pointer = control.FilePointer
    value = int(pointer.Value) if pointer.has_member("Value") else int(pointer)
    return (value & ~0xF) or None


def _int_table(values: Any) -> Any:
    """MmProtectToValue as plain ints, read once: indexing Volatility's Array builds an object per VAD."""
    try:
        return tuple(int(v) for v in values)
    except (*READ_ERRORS, TypeError, ValueError):
        return values


def _protection(index: int, protect_values: Any) -> str:
    """A VAD's protection index through the kernel's MmProtectToValue, spelled as Elastic does."""
    try:
        return page_protection(int(protect_values[index]))
    except (IndexError, TypeError):
        return UNKNOWN_PROTECTION


def _vad_type(vad: Any) -> int | None:
    for path in (("u", "VadFlags", "VadType"), ("Core", "u", "VadFlags", "VadType")):
        obj = vad
        try:
            for part in path:
                if not obj.has_member(part):
                    raise AttributeError(part)
                obj = getattr(obj, part)
            return int(obj)
        except AttributeError:
            continue
    return None


def list_processes(
    context: interfaces.context.ContextInterface, kernel_module_name: str, pids: list[int] | None = None
) -> Iterator[Any]:
    """``_EPROCESS`` objects, as windows.pslist lists them (with its --pid filter)."""
    filter_func = pslist.PsList.create_pid_filter(pids or None)
    yield from pslist.PsList.list_processes(context=context, kernel_module_name=kernel_module_name, filter_func=filter_func)


def open_process(context: interfaces.context.ContextInterface, kernel_module_name: str, proc: Any,
                 object_types: ObjectTypes | None = None) -> VolatilityProcess | str:
    """The adapter for one process, or a string saying why its memory cannot be opened."""
    try:
        return VolatilityProcess(context, kernel_module_name, proc, object_types)
    except READ_ERRORS as exc:
        return f"process layer not available ({_reason(exc)})"
    except (AttributeError, ValueError, TypeError) as exc:
        return f"process object unreadable ({_reason(exc)})"


def _reason(exc: Exception) -> str:
    """Volatility's read errors often carry no message; the type still says what failed."""
    return str(exc) or type(exc).__name__


__all__ = ["ObjectTypes", "VolatilityProcess", "list_processes", "open_process", "system_time"]
