"""Kernel structures read as raw bytes, with member offsets resolved once from the symbol table.

Why: every member access on a Volatility object builds a template instance, an
``ObjectInformation`` and a read; a thread's dozen fields or a VAD's four, read that way, cost
more than walking the thread's whole stack, and grow an image's analysis with its thread count.
Volatility's own VAD traversal also keeps every node it visits alive for the rest of the run
(``MMVAD_SHORT.get_tag`` is an unbounded ``lru_cache`` on the node). Reading each structure's
bytes once and unpacking its members at the offsets the symbol table gives keeps the per-thread
and per-VAD cost flat and leaves nothing behind.

The values are Volatility's, bit for bit: pointers masked to the layer's address space, bit
fields ``(value & ((1 << end) - 1)) >> start``, members found through the same
``has_member`` chains Volatility's extension methods try. Whatever this module cannot read the
way Volatility would (a structure across a missing page, a layout it does not know) the
adapter reads through Volatility's objects instead.
"""

from __future__ import annotations

import operator
import struct
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from volatility3.framework import constants, exceptions, interfaces, objects
from volatility3.framework.objects import templates

READ_ERRORS = (exceptions.InvalidAddressException, exceptions.PagedInvalidAddressException)
# Volatility's VAD traversal gives up (RuntimeError) below this depth; so must we.
VAD_MAX_DEPTH = 100
POOL_TAG_BEFORE_NODE = 12  # 64-bit _POOL_HEADER: the tag's 4 bytes, 12 bytes before the VAD


class LayoutUnknown(Exception):
    """The symbol table lacks a member this fast path needs: use Volatility's objects."""


class TreeTooDeep(Exception):
    """The VAD tree is deeper than Volatility walks: let Volatility's traversal say so."""


@dataclass(frozen=True, slots=True)
class Field:
    """One member: where it lies in its structure and how Volatility turns its bytes into an int."""

    offset: int
    length: int
    signed: bool = False
    start_bit: int | None = None
    end_bit: int = 0
    mask: int | None = None  # a pointer: masked to the address space of the layer it is read on

    @property
    def end(self) -> int:
        return self.offset + self.length

    def get(self, data: bytes, origin: int = 0) -> int:
        """The member's value in ``data``, a read of the structure starting at offset ``origin``."""
        at = self.offset - origin
        value = int.from_bytes(data[at : at + self.length], "little", signed=self.signed)
        if self.start_bit is not None:
            value = (value & ((1 << self.end_bit) - 1)) >> self.start_bit
        if self.mask is not None:
            value &= self.mask
        return value


class TypeFields:
    """Dotted member paths of one kernel type, resolved through the symbol table's templates."""

    def __init__(self, context: interfaces.context.ContextInterface, table: str, type_name: str,
                 address_mask: int) -> None:
        self._context = context
        self._mask = address_mask
        self.template = self._resolve(context.symbol_space.get_type(table + constants.BANG + type_name))

    def _resolve(self, template: Any) -> Any:
        if isinstance(template, templates.ReferenceTemplate):
            return self._context.symbol_space.get_type(template.vol.type_name)
        return template

    def _member(self, path: str) -> tuple[Any, int] | None:
        template, offset = self.template, 0
        for part in path.split("."):
            members = template.vol.get("members") if "members" in template.vol else None
            if not members or part not in members:
                return None
            relative, child = members[part]
            offset += relative
            template = self._resolve(child)
        return template, offset

    def offset(self, path: str) -> int:
        """Where the member at ``path`` (of any type) starts in the structure."""
        found = self._member(path)
        if found is None:
            raise LayoutUnknown(f"no {path} in {self.template.vol.type_name}")
        return found[1]

    def has(self, path: str) -> bool:
        """``path`` names a member (of any type), as a chain of ``has_member`` checks would."""
        return self._member(path) is not None

    def find(self, path: str) -> Field | None:
        """The integer member at ``path`` (``Tcb.TrapFrame``); None when a part is not a member."""
        found = self._member(path)
        return None if found is None else self._leaf(*found)

    def first(self, *paths: str) -> Field | None:
        """The first of ``paths`` that resolves, as Volatility's ``has_member`` chains choose."""
        for path in paths:
            found = self.find(path)
            if found is not None:
                return found
        return None

    def need(self, *paths: str) -> Field:
        found = self.first(*paths)
        if found is None:
            raise LayoutUnknown(f"no {' or '.join(paths)} in {self.template.vol.type_name}")
        return found

    def _leaf(self, template: Any, offset: int) -> Field | None:
        cls = template.vol.object_class
        if issubclass(cls, objects.BitField):
            length, _, signed = template.vol.base_type.vol.data_format
            return Field(offset, length, signed, template.vol.start_bit, template.vol.end_bit)
        if issubclass(cls, objects.Enumeration):
            length, _, signed = template.vol.base_type.vol.data_format
            return Field(offset, length, signed)
        if issubclass(cls, objects.Pointer):
            length, _, _ = template.vol.data_format
            return Field(offset, length, False, mask=self._mask)
        if issubclass(cls, (objects.Integer, objects.Char, objects.Boolean)):
            length, _, signed = template.vol.data_format
            return Field(offset, length, signed)
        return None


_CODES = {(1, False): "B", (2, False): "H", (4, False): "I", (8, False): "Q",
          (1, True): "b", (2, True): "h", (4, True): "i", (8, True): "q"}


class FieldGroup:
    """Named members read from one buffer, their bytes unpacked by a single ``struct`` call.

    Why: a thread's row, its trap frame and every VAD read ten-odd members each, and a method call
    per member was most of what reading them cost. The values are exactly :meth:`Field.get`'s:
    each distinct piece of bytes (offset, length, sign) is unpacked once, and a member's bits and
    mask are applied to it as ``get`` applies them. Pieces that overlap one another, lengths
    ``struct`` has no code for, and a buffer shorter than the group's span are left to ``get``.
    """

    __slots__ = ("names", "fields", "origin", "_struct", "_picks", "_take", "_adjust")

    def __init__(self, members: "Iterable[tuple[str, Field]]", origin: int) -> None:
        named = tuple(members)
        self.names = tuple(name for name, _ in named)
        self.fields = tuple(member for _, member in named)
        self.origin = origin
        cells = sorted({(f.offset, f.length, f.signed) for f in self.fields})
        plain = all((length, signed) in _CODES and offset >= origin for offset, length, signed in cells)
        disjoint = all(a[0] + a[1] <= b[0] for a, b in zip(cells, cells[1:]))
        if not (cells and plain and disjoint):
            self._struct, self._picks, self._take, self._adjust = None, (), None, ()
            return
        fmt, at = ["<"], origin
        for offset, length, signed in cells:
            fmt.append(f"{offset - at}x{_CODES[length, signed]}" if offset > at else _CODES[length, signed])
            at = offset + length
        self._struct = struct.Struct("".join(fmt))
        index = {cell: i for i, cell in enumerate(cells)}
        self._picks = tuple((index[f.offset, f.length, f.signed], f.start_bit, f.end_bit, f.mask) for f in self.fields)
        # Each member's piece taken in one C call; only bit fields and masked members (pointers)
        # are then worked on one by one.
        picked = [pick[0] for pick in self._picks]
        self._take = operator.itemgetter(*picked) if len(picked) > 1 else (lambda cells: (cells[picked[0]],))
        self._adjust = tuple((position, start_bit, end_bit, mask)
                             for position, (_, start_bit, end_bit, mask) in enumerate(self._picks)
                             if start_bit is not None or mask is not None)

    @classmethod
    def present(cls, owner: Any, names: tuple[str, ...], origin: int) -> "FieldGroup":
        """The members of ``owner`` named in ``names`` that it has (not None), in that order."""
        return cls(((name, getattr(owner, name)) for name in names if getattr(owner, name) is not None), origin)

    def read(self, data: bytes) -> dict[str, int]:
        """Each member's value by name, from ``data`` read at ``origin``."""
        return dict(zip(self.names, self.values(data)))

    def values(self, data: bytes) -> list[int]:
        """Each member's value, in the group's order, from ``data`` read at ``origin``."""
        if self._struct is None or len(data) < self._struct.size:
            return [f.get(data, self.origin) for f in self.fields]
        out = list(self._take(self._struct.unpack_from(data)))
        for position, start_bit, end_bit, mask in self._adjust:
            value = out[position]
            if start_bit is not None:
                value = (value & ((1 << end_bit) - 1)) >> start_bit
            if mask is not None:
                value &= mask
            out[position] = value
        return out


def span(fields: Iterator[Field | None] | list[Field | None]) -> tuple[int, int]:
    """The smallest [start, end) holding every given field: one read for the structure."""
    present = [f for f in fields if f is not None]
    return min(f.offset for f in present), max(f.end for f in present)


@dataclass(frozen=True, slots=True)
class Vad:
    """What the adapter makes a region from, as Volatility's MMVAD_SHORT / MMVAD methods return it."""

    start: int
    end: int  # the last byte, as get_end() gives it
    protection: int
    private: bool
    vad_type: int | None
    commit_charge: int | None
    file_name: str | None
    file_object: int | None = None  # the FILE_OBJECT behind a mapped or image VAD


@dataclass(frozen=True, slots=True)
class VadFields:
    """One VAD type's members, found through the ``has_member`` chains of Volatility's methods."""

    starting_vpn: Field
    starting_vpn_high: Field | None
    ending_vpn: Field
    ending_vpn_high: Field | None
    protection: Field
    private: Field
    vad_type: Field | None  # the adapter's _vad_type: u.VadFlags.VadType or Core.u.VadFlags.VadType
    commit_charge: Field | None
    subsection: Field | None  # _MMVAD only: the mapped file is behind Subsection -> ControlArea
    start: int
    end: int
    _members: FieldGroup = field(init=False, repr=False, compare=False)  # the DECODED members it has

    DECODED = ("starting_vpn", "starting_vpn_high", "ending_vpn", "ending_vpn_high", "protection", "private",
               "vad_type", "commit_charge")

    def __post_init__(self) -> None:
        object.__setattr__(self, "_members", FieldGroup.present(self, self.DECODED, self.start))

    @classmethod
    def resolve(cls, vad: TypeFields, long: bool) -> "VadFields":
        if vad.has("StartingVpn"):
            vpn = ("StartingVpn", "StartingVpnHigh", "EndingVpn", "EndingVpnHigh")
        elif vad.has("Core"):
            vpn = ("Core.StartingVpn", "Core.StartingVpnHigh", "Core.EndingVpn", "Core.EndingVpnHigh")
        else:
            raise LayoutUnknown("no StartingVpn or Core in the VAD")
        if vad.has("u"):
            protection = vad.need("u.VadFlags.Protection")
        elif vad.has("Core"):
            protection = vad.need("Core.u.VadFlags.Protection")
        else:
            raise LayoutUnknown("no u or Core in the VAD")
        if long and (vad.has("ControlArea") or not vad.has("Subsection")):
            raise LayoutUnknown("the VAD names its file another way than Subsection -> ControlArea")
        fields = dict(
            starting_vpn=vad.need(vpn[0]), starting_vpn_high=vad.find(vpn[1]),
            ending_vpn=vad.need(vpn[2]), ending_vpn_high=vad.find(vpn[3]),
            protection=protection,
            private=vad.need("u1.VadFlags1.PrivateMemory", "u.VadFlags.PrivateMemory",
                             "Core.u1.VadFlags1.PrivateMemory", "Core.u.VadFlags.PrivateMemory"),
            vad_type=vad.first("u.VadFlags.VadType", "Core.u.VadFlags.VadType"),
            commit_charge=_commit_charge(vad),
            subsection=vad.need("Subsection") if long else None,
        )
        start, end = span(list(fields.values()))
        return cls(start=start, end=end, **fields)

    def decode(self, data: bytes) -> tuple[int, int, int, bool, int | None, int | None]:
        """(first byte, last byte, protection index, private, VadType, CommitCharge) from [start, end)."""
        value = self._members.read(data)
        first = value["starting_vpn"] << 12
        if "starting_vpn_high" in value:
            first |= value["starting_vpn_high"] << 44
        last = (value["ending_vpn"] + 1) << 12
        if "ending_vpn_high" in value:
            last |= value["ending_vpn_high"] << 44
        return (first, last - 1, value["protection"], bool(value["private"]), value.get("vad_type"),
                value.get("commit_charge"))


def _commit_charge(vad: TypeFields) -> Field | None:
    """MMVAD_SHORT.get_commit_charge's choice of member (None where it would raise)."""
    if vad.has("CommitCharge"):
        return vad.find("CommitCharge")
    if vad.has("u1.VadFlags1"):
        return vad.find("u1.VadFlags1.CommitCharge")
    if vad.has("u.VadFlags"):
        return vad.find("u.VadFlags.CommitCharge")
    if vad.has("Core"):
        return vad.find("Core.CommitCharge") if vad.has("Core.CommitCharge") else vad.find("Core.u1.VadFlags1.CommitCharge")
    return None


@dataclass(frozen=True, slots=True)
class FileNameFields:
    """MMVAD.get_file_name's chain: Subsection -> ControlArea -> FilePointer (EX_FAST_REF) -> FileName."""

    control_area: Field  # _SUBSECTION.ControlArea
    file_pointer: Field  # _CONTROL_AREA.FilePointer.Object
    length: Field        # _FILE_OBJECT.FileName.Length
    buffer: Field        # _FILE_OBJECT.FileName.Buffer

    @classmethod
    def resolve(cls, context: interfaces.context.ContextInterface, table: str, address_mask: int) -> "FileNameFields":
        def fields(type_name: str) -> TypeFields:
            return TypeFields(context, table, type_name, address_mask)

        return cls(fields("_SUBSECTION").need("ControlArea"), fields("_CONTROL_AREA").need("FilePointer.Object"),
                   fields("_FILE_OBJECT").need("FileName.Length"), fields("_FILE_OBJECT").need("FileName.Buffer"))

    def file_object(self, layer: interfaces.layers.DataLayerInterface, subsection: int) -> int | None:
        """The FILE_OBJECT's address (EX_FAST_REF's count bits cleared), or None when unreadable."""
        try:
            control_area = _read_field(layer, subsection, self.control_area)
            return (_read_field(layer, control_area, self.file_pointer) & ~0xF) or None
        except READ_ERRORS:
            return None

    def read(self, layer: interfaces.layers.DataLayerInterface, subsection: int) -> str | None:
        """The mapped file's name, or None wherever Volatility's get_file_name gives NotApplicable."""
        try:
            control_area = _read_field(layer, subsection, self.control_area)
            file_object = _read_field(layer, control_area, self.file_pointer) & ~0xF  # EX_FAST_REF's count bits
            length = _read_field(layer, file_object, self.length)
            if length <= 0:
                return None
            return unicode_string(layer, length, _read_field(layer, file_object, self.buffer))  # Volatility's String
        except READ_ERRORS:
            return None


def _read_field(layer: interfaces.layers.DataLayerInterface, address: int, field: Field) -> int:
    return field.get(layer.read(address + field.offset, field.length), field.offset)


@dataclass(frozen=True, slots=True)
class VadLayout:
    """Where a VAD tree node's children lie, and the members of short and long VADs."""

    left: Field
    right: Field
    short: VadFields
    long: VadFields
    file_name: FileNameFields
    # (layer, subsection) -> (file name, FILE_OBJECT): see _file_of
    _files: dict[tuple[str, int], tuple[str | None, int | None]] = field(default_factory=dict, compare=False,
                                                                          repr=False)

    @classmethod
    def resolve(cls, context: interfaces.context.ContextInterface, table: str, node_type: str,
                address_mask: int) -> "VadLayout":
        node = TypeFields(context, table, node_type, address_mask)
        # MMVAD_SHORT.get_left_child / get_right_child, tried in Volatility's order
        left = node.need("LeftChild", "Left", "VadNode.LeftChild", "VadNode.Left", "Core.VadNode.LeftChild",
                         "Core.VadNode.Left")
        right = node.need("RightChild", "Right", "VadNode.RightChild", "VadNode.Right", "Core.VadNode.RightChild",
                          "Core.VadNode.Right")
        return cls(left, right,
                   VadFields.resolve(TypeFields(context, table, "_MMVAD_SHORT", address_mask), long=False),
                   VadFields.resolve(TypeFields(context, table, "_MMVAD", address_mask), long=True),
                   FileNameFields.resolve(context, table, address_mask))

    def read(self, layer: interfaces.layers.DataLayerInterface, address: int, kind: str) -> Vad | None:
        """A VAD's values from one read of its bytes; None when they do not read in one piece."""
        fields = self.short if kind == "short" else self.long
        try:
            data = layer.read(address + fields.start, fields.end - fields.start)
        except READ_ERRORS:
            return None
        start, last, protection, private, vad_type, commit = fields.decode(data)
        name = file_object = None
        if fields.subsection is not None:
            name, file_object = self._file_of(layer, fields.subsection.get(data, fields.start))
        return Vad(start, last, protection, private, vad_type, commit, name, file_object)

    def _file_of(self, layer: interfaces.layers.DataLayerInterface, subsection: int) -> tuple[str | None, int | None]:
        """The file name and FILE_OBJECT behind a VAD's subsection. Both are kernel memory, the same
        bytes whichever process's VAD points there, and every process that maps a DLL points at
        the one image section of it: worked out once per image and subsection, not six reads per
        VAD (a real host's processes map the same DLLs and data files over and over)."""
        key = (layer.name, subsection)
        found = self._files.get(key)
        if found is None:
            found = self._files[key] = (self.file_name.read(layer, subsection),
                                        self.file_name.file_object(layer, subsection))
        return found


def vad_nodes(layer: interfaces.layers.DataLayerInterface, root: int, layout: VadLayout) -> list[tuple[int, str]]:
    """Every VAD under ``root`` as (address, ``short`` | ``long``), in the order and with the
    choices of Volatility's ``MMVAD_SHORT.traverse``: a node whose pool tag is not a VAD's is
    skipped with its subtree, a node seen before ends that branch, an unreadable child pointer
    is no child. Raises :class:`TreeTooDeep` where Volatility raises its RuntimeError."""
    out: list[tuple[int, str]] = []
    visited: set[int] = set()
    todo = [(root, 0)]
    while todo:
        address, depth = todo.pop()
        if depth > VAD_MAX_DEPTH:
            raise TreeTooDeep(f"VAD tree deeper than {VAD_MAX_DEPTH} at {address:#x}")
        if address in visited:
            continue
        visited.add(address)
        head = _node_head(layer, address, layout)
        tag = _tag(layer, address) if head is None else _decoded_tag(head[:4])
        if tag in ("VadS", "VadF"):
            out.append((address, "short"))
        elif tag is not None and tag.startswith("Vad"):
            out.append((address, "long"))
        elif depth != 0:
            continue
        if head is None:
            right = _pointer(layer, address, layout.right)
            left = _pointer(layer, address, layout.left)
        else:
            right = layout.right.get(head, -POOL_TAG_BEFORE_NODE)
            left = layout.left.get(head, -POOL_TAG_BEFORE_NODE)
        if right is not None:
            todo.append((right, depth + 1))
        if left is not None:
            todo.append((left, depth + 1))
    return out


def _node_head(layer: interfaces.layers.DataLayerInterface, address: int, layout: VadLayout) -> bytes | None:
    """A node's pool tag and child pointers in one read (from the tag to the last pointer's end),
    the three reads the traversal makes of every node; None when that range does not read whole,
    and then each is read alone, so a missing byte costs only what it costs Volatility."""
    end = max(layout.left.offset + layout.left.length, layout.right.offset + layout.right.length, 0)
    try:
        return layer.read(address - POOL_TAG_BEFORE_NODE, end + POOL_TAG_BEFORE_NODE)
    except (*READ_ERRORS, ValueError):
        return None


def _tag(layer: interfaces.layers.DataLayerInterface, address: int) -> str | None:
    try:
        return _decoded_tag(layer.read(address - POOL_TAG_BEFORE_NODE, 4))
    except (*READ_ERRORS, ValueError):
        return None


def _decoded_tag(raw: bytes) -> str | None:
    try:
        return raw.decode()
    except (UnicodeDecodeError, ValueError):
        return None


def _pointer(layer: interfaces.layers.DataLayerInterface, address: int, field: Field) -> int | None:
    try:
        return field.get(layer.read(address + field.offset, field.length), field.offset)
    except READ_ERRORS:
        return None


ROW_MEMBERS = ("tid", "create_time", "impersonation_bit", "cross_thread_flags", "impersonation_data", "state",
               "wait_reason", "syscall_number", "start_address", "win32_start_address", "teb", "trap_frame")


@dataclass(frozen=True, slots=True)
class ThreadLayout:
    """The _ETHREAD / _KTHREAD members a thread's row needs, and its TEB's and trap frame's."""

    tid: Field
    create_time: Field
    impersonation_bit: Field | None  # ActiveImpersonationInfo, where the layout names the bit
    cross_thread_flags: Field | None
    impersonation_data: Field
    state: Field
    wait_reason: Field
    syscall_number: Field | None
    start_address: Field
    win32_start_address: Field | None
    teb: Field
    trap_frame: Field
    start: int
    end: int
    stack_base: Field
    stack_limit: Field
    teb_start: int
    teb_end: int
    trap: tuple[tuple[str, Field], ...]
    trap_start: int
    trap_end: int
    thread_list_head: int  # _EPROCESS.ThreadListHead
    thread_list_entry: int  # _ETHREAD.ThreadListEntry
    flink: Field
    link_size: int
    # the ROW_MEMBERS this layout has (read at ``start``) and ``trap``'s registers (at ``trap_start``)
    row: FieldGroup = field(init=False, repr=False, compare=False)
    trap_registers: FieldGroup = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "row", FieldGroup.present(self, ROW_MEMBERS, self.start))
        object.__setattr__(self, "trap_registers", FieldGroup(self.trap, self.trap_start))

    @classmethod
    def resolve(cls, context: interfaces.context.ContextInterface, table: str, address_mask: int) -> "ThreadLayout":
        ethread = TypeFields(context, table, "_ETHREAD", address_mask)
        fields = dict(
            tid=ethread.need("Cid.UniqueThread"),
            create_time=ethread.need("CreateTime.QuadPart"),
            impersonation_bit=ethread.find("ActiveImpersonationInfo"),
            cross_thread_flags=ethread.find("CrossThreadFlags"),
            impersonation_data=ethread.need("ClientSecurity.ImpersonationData"),
            state=ethread.need("Tcb.State"),
            wait_reason=ethread.need("Tcb.WaitReason"),
            syscall_number=ethread.find("Tcb.SystemCallNumber"),
            start_address=ethread.need("StartAddress"),
            win32_start_address=ethread.find("Win32StartAddress"),
            teb=ethread.need("Tcb.Teb"),
            trap_frame=ethread.need("Tcb.TrapFrame"),
        )
        if fields["impersonation_bit"] is None and fields["cross_thread_flags"] is None:
            raise LayoutUnknown("no ActiveImpersonationInfo or CrossThreadFlags in _ETHREAD")
        start, end = span(list(fields.values()))
        teb = TypeFields(context, table, "_TEB", address_mask)
        base, limit = teb.need("NtTib.StackBase"), teb.need("NtTib.StackLimit")
        teb_start, teb_end = span([base, limit])
        trap_type = TypeFields(context, table, "_KTRAP_FRAME", address_mask)
        trap = tuple((name.lower(), found) for name in ("Rip", "Rsp", "Rbp", "Rax", "Rcx", "Rdx", "R8", "R9", "R10", "R11")
                     if (found := trap_type.find(name)) is not None)
        if [name for name, _ in trap[:3]] != ["rip", "rsp", "rbp"]:
            raise LayoutUnknown("no Rip, Rsp, Rbp in _KTRAP_FRAME")
        trap_start, trap_end = span([f for _, f in trap])
        process = TypeFields(context, table, "_EPROCESS", address_mask)
        link = TypeFields(context, table, "_LIST_ENTRY", address_mask)
        return cls(start=start, end=end, stack_base=base, stack_limit=limit, teb_start=teb_start, teb_end=teb_end,
                   trap=trap, trap_start=trap_start, trap_end=trap_end,
                   thread_list_head=process.offset("ThreadListHead"),
                   thread_list_entry=ethread.offset("ThreadListEntry"), flink=link.need("Flink"),
                   link_size=int(link.template.size), **fields)

    def threads(self, layer: interfaces.layers.DataLayerInterface, eprocess: int) -> Iterator[int]:
        """The _ETHREAD addresses of a process, as Volatility's Threads.list_threads gives them
        (ThreadListHead.to_list(_ETHREAD, ThreadListEntry))."""
        yield from list_entries(layer, eprocess + self.thread_list_head, self.thread_list_entry, self.flink,
                                self.link_size)


def list_entries(layer: interfaces.layers.DataLayerInterface, head: int, link_offset: int, flink: Field,
                 link_size: int) -> Iterator[int]:
    """The structures on a LIST_ENTRY list, as Volatility's ``LIST_ENTRY.to_list`` gives them,
    without an object per link (each of which Volatility keeps alive behind the list head): a
    link that is not readable ends the list, a link seen before ends it, and a read that fails
    raises as Volatility's would."""
    if not layer.is_valid(head):
        return
    link = _read_field(layer, head, flink)
    if not (link and layer.is_valid(link, link_size)):
        return
    seen = {head}
    while link not in seen:
        entry = link - link_offset
        if not layer.is_valid(entry):
            return
        yield entry
        seen.add(link)
        link = _read_field(layer, link, flink)
        if not (link and layer.is_valid(link, link_size)):
            return


@dataclass(frozen=True, slots=True)
class LoaderEntry:
    """What the adapter makes a module from, as an _LDR_DATA_TABLE_ENTRY's objects give it."""

    base: int
    size: int
    path: str | None  # FullDllName, else BaseDllName; None when a name's buffer does not read
    timestamp: int | None  # None where the layout has no such member
    load_time: int | None
    signing_level: int | None


@dataclass(frozen=True, slots=True)
class LoaderLayout:
    """The _LDR_DATA_TABLE_ENTRY members a module needs, and how its load-order list is linked."""

    links: int  # InLoadOrderLinks
    flink: Field
    link_size: int
    dll_base: Field
    size_of_image: Field
    full_length: Field
    full_buffer: Field
    base_length: Field
    base_buffer: Field
    timestamp: Field | None
    load_time: Field | None
    signing_level: Field | None
    start: int
    end: int

    @classmethod
    def resolve(cls, context: interfaces.context.ContextInterface, table: str, address_mask: int) -> "LoaderLayout":
        entry = TypeFields(context, table, "_LDR_DATA_TABLE_ENTRY", address_mask)
        link = TypeFields(context, table, "_LIST_ENTRY", address_mask)
        fields = dict(
            dll_base=entry.need("DllBase"), size_of_image=entry.need("SizeOfImage"),
            full_length=entry.need("FullDllName.Length"), full_buffer=entry.need("FullDllName.Buffer"),
            base_length=entry.need("BaseDllName.Length"), base_buffer=entry.need("BaseDllName.Buffer"),
            timestamp=entry.need("TimeDateStamp") if entry.has("TimeDateStamp") else None,
            load_time=entry.need("LoadTime.QuadPart") if entry.has("LoadTime") else None,
            signing_level=entry.need("SigningLevel") if entry.has("SigningLevel") else None,
        )
        start, end = span(list(fields.values()))
        return cls(entry.offset("InLoadOrderLinks"), link.need("Flink"), int(link.template.size), start=start,
                   end=end, **fields)

    def entries(self, layer: interfaces.layers.DataLayerInterface, head: int) -> Iterator[int]:
        """The entries of the list whose head (PEB_LDR_DATA.InLoadOrderModuleList) is at ``head``."""
        yield from list_entries(layer, head, self.links, self.flink, self.link_size)

    def read(self, layer: interfaces.layers.DataLayerInterface, entry: int) -> LoaderEntry | None:
        """One entry from one read of its bytes; None when they do not read in one piece."""
        try:
            data = layer.read(entry + self.start, self.end - self.start)
        except READ_ERRORS:
            return None

        def get(member: Field | None) -> int | None:
            return None if member is None else member.get(data, self.start)

        try:  # Volatility's get_string: Length bytes at Buffer, UTF-16, errors replaced, cut at a NUL
            path = (unicode_string(layer, get(self.full_length), get(self.full_buffer))
                    or unicode_string(layer, get(self.base_length), get(self.base_buffer)))
        except READ_ERRORS:
            path = None
        return LoaderEntry(get(self.dll_base), get(self.size_of_image), path, get(self.timestamp),
                           get(self.load_time), get(self.signing_level))


@dataclass(frozen=True, slots=True)
class ParametersLayout:
    """Where a process's ``_RTL_USER_PROCESS_PARAMETERS`` keep the strings a process is named by:
    its image path, command line and current directory (each a UNICODE_STRING's Length and
    Buffer). Why: Volatility's objects took ~0.7 ms a process for the three."""

    image_length: Field
    image_buffer: Field
    command_length: Field
    command_buffer: Field
    directory_length: Field
    directory_buffer: Field
    start: int
    end: int

    @classmethod
    def resolve(cls, context: interfaces.context.ContextInterface, table: str, address_mask: int) -> "ParametersLayout":
        params = TypeFields(context, table, "_RTL_USER_PROCESS_PARAMETERS", address_mask)
        fields = dict(
            image_length=params.need("ImagePathName.Length"), image_buffer=params.need("ImagePathName.Buffer"),
            command_length=params.need("CommandLine.Length"), command_buffer=params.need("CommandLine.Buffer"),
            directory_length=params.need("CurrentDirectory.DosPath.Length"),
            directory_buffer=params.need("CurrentDirectory.DosPath.Buffer"),
        )
        start, end = span(list(fields.values()))
        return cls(start=start, end=end, **fields)

    def strings(self, layer: interfaces.layers.DataLayerInterface,
                address: int) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None:
        """(Length, Buffer) of the image path, the command line and the current directory, from
        one read of the structure's bytes; None when they do not read in one piece (Volatility's
        objects then say member by member what is missing)."""
        try:
            data = layer.read(address + self.start, self.end - self.start)
        except READ_ERRORS:
            return None
        return tuple((length.get(data, self.start), buffer.get(data, self.start)) for length, buffer in (
            (self.image_length, self.image_buffer), (self.command_length, self.command_buffer),
            (self.directory_length, self.directory_buffer)))


def unicode_string(layer: interfaces.layers.DataLayerInterface, length: int, buffer: int) -> str:
    """Volatility's ``UNICODE_STRING.get_string``: Length bytes at Buffer, UTF-16 with errors
    replaced, cut at the first NUL; the layer's exception when the bytes do not read."""
    text = str(layer.read(buffer, length), encoding="utf16", errors="replace") if length > 0 else ""
    index = text.find("\x00")
    return text[:index] if index >= 0 else text


__all__ = ["Field", "TypeFields", "Vad", "VadFields", "VadLayout", "LoaderEntry", "LoaderLayout", "ParametersLayout",
           "ThreadLayout", "unicode_string",
           "list_entries", "vad_nodes", "LayoutUnknown", "TreeTooDeep", "VAD_MAX_DEPTH"]
