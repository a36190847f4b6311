"""VAD trees: balanced nodes, start/end with the high bytes, flags, and file objects.

A VAD's kind is told by its pool tag (``VadS`` short/private, ``Vad `` long);
image and mapped-file VADs lead to the file name through
``Subsection -> ControlArea -> FilePointer -> _FILE_OBJECT.FileName``. The
tree is written in the shape each build uses: ``LeftChild``/``RightChild`` and
``u1.Parent`` on Windows 7, ``VadNode`` (an _RTL_BALANCED_NODE) from 8.1 on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .layout import LayoutError, StructBuffer
from .machine import Machine, set_unicode, utf16z
from .plan import VadPlan

if TYPE_CHECKING:
    from .obmanager import ObjectManager

VAD_TYPE_NONE, VAD_TYPE_IMAGE = 0, 2
FILE_OBJECT_TYPE = 5

# Elastic's protection spelling -> MM_* protection index (MmProtectToValue order).
MM_PROTECTION = {
    "---": 0, "R--": 1, "--X": 2, "R-X": 3, "RW-": 4, "RC-": 5, "RWX": 6, "RCX": 7,
}


@dataclass(frozen=True, slots=True)
class MappedFile:
    file_object: int
    control_area: int
    subsection: int


@dataclass
class FileObjects:
    """One FILE_OBJECT/CONTROL_AREA/SUBSECTION per (file, image?) pair, shared by every mapping process."""

    m: Machine
    objects: "ObjectManager | None" = None
    _cache: dict[tuple[str, bool], MappedFile] = field(default_factory=dict)

    def mapping(self, path: str, image: bool, flags: tuple[str, ...] = ()) -> MappedFile:
        """The shared mapping of a file; one with ``flags`` (deleted, transacted) has a file object of its own."""
        key = (path.lower(), image, flags)
        if key not in self._cache:
            self._cache[key] = self._create(path, image, flags)
        return self._cache[key]

    def file_object(self, path: str) -> int:
        return self.mapping(path, True).file_object

    def _create(self, path: str, image: bool, flags: tuple[str, ...] = ()) -> MappedFile:
        m = self.m
        if self.objects is not None:
            fo_va = self.objects.file(path)
            if flags:
                from .implants import mark_file_object

                mark_file_object(m, self.objects, fo_va, flags)
        else:
            fo = m.struct("_FILE_OBJECT")
            fo_va = m.pool.alloc(len(fo), b"File", object_header=True)
            fo.set("Type", FILE_OBJECT_TYPE)
            fo.set_if("Size", len(fo))
            fo.set_if("ReadAccess", 1)
            fo.set_if("SharedRead", 1)
            set_unicode(fo, "FileName", path, m.pool.alloc_bytes(utf16z(path), b"FSfn"))
            m.kput(fo_va, fo)
        ca = m.struct("_CONTROL_AREA")
        sub = m.struct("_SUBSECTION")
        ca_va = m.pool.alloc(len(ca) + len(sub), b"MmCi" if image else b"MmCa")
        sub_va = ca_va + len(ca)
        ca.set("FilePointer.Value", fo_va | 0x1)
        _set_section_flags(ca, image)
        for name in ("NumberOfSectionReferences", "NumberOfMappedViews", "NumberOfUserReferences"):
            ca.set_if(name, 1)
        sub.set("ControlArea", ca_va)
        sub.set_if("PtesInSubsection", 1)
        m.kput(ca_va, ca)
        m.kput(sub_va, sub)
        return MappedFile(fo_va, ca_va, sub_va)


def _set_section_flags(ca: StructBuffer, image: bool) -> None:
    for prefix in ("u.Flags.", ""):
        if ca.has(prefix + "File"):
            ca.set(prefix + "File", 1)
            if image:
                ca.set(prefix + "Image", 1)
            return


def nt_file_name(win32_path: str) -> str:
    """``C:\\Windows\\x.dll`` -> ``\\Windows\\x.dll``: the form a FILE_OBJECT holds (device apart)."""
    path = win32_path.replace("/", "\\")
    if len(path) >= 2 and path[1] == ":":
        path = path[2:]
    return path if path.startswith("\\") else "\\" + path


def write_vad_tree(m: Machine, vads: list[VadPlan], files: FileObjects, eprocess: int, anchor: int) -> int:
    """Write the VADs as a balanced tree; returns the root's address (0 for none)."""
    ordered = sorted(vads, key=lambda v: v.start)
    _check_overlaps(ordered)
    nodes = [_allocate(m, vad) for vad in ordered]
    root = _link(m, ordered, nodes, 0, len(ordered), anchor, files, eprocess)
    return root


def _check_overlaps(vads: list[VadPlan]) -> None:
    for prev, cur in zip(vads, vads[1:]):
        if cur.start <= prev.end:
            raise ValueError(f"regions overlap: {prev.label or hex(prev.start)} and {cur.label or hex(cur.start)}")


def _allocate(m: Machine, vad: VadPlan) -> int:
    type_name = "_MMVAD_SHORT" if vad.kind == "private" else "_MMVAD"
    return m.pool.alloc(m.size(type_name), vad.tag)


def _link(m: Machine, vads: list[VadPlan], nodes: list[int], lo: int, hi: int, parent: int,
          files: FileObjects, eprocess: int) -> int:
    if lo >= hi:
        return 0
    mid = (lo + hi) // 2
    left = _link(m, vads, nodes, lo, mid, nodes[mid], files, eprocess)
    right = _link(m, vads, nodes, mid + 1, hi, nodes[mid], files, eprocess)
    _write_node(m, vads[mid], nodes[mid], left, right, parent, files, eprocess)
    return nodes[mid]


def _write_node(m: Machine, vad: VadPlan, va: int, left: int, right: int, parent: int,
                files: FileObjects, eprocess: int) -> None:
    long = vad.kind != "private"
    buf = m.struct("_MMVAD" if long else "_MMVAD_SHORT")
    core = "Core." if buf.has("Core") else ""
    _set_links(m, buf, core, left, right, parent)
    _set_range(buf, core, vad)
    _set_flags(m, buf, core, vad)
    if long:
        if not vad.file_path:
            raise ValueError(f"a {vad.kind} region needs a file: {vad.label or hex(vad.start)}")
        mapped = files.mapping(vad.file_path, vad.kind == "image", vad.file_flags)
        buf.set("Subsection", mapped.subsection)
        buf.set_if("FileObject", mapped.file_object)
        buf.set_if("VadsProcess", eprocess | 1)
        buf.set_if("u2.VadFlags2.Inherit", 1)
    m.kput(va, buf)


def _set_links(m: Machine, buf: StructBuffer, core: str, left: int, right: int, parent: int) -> None:
    if buf.has(core + "VadNode.Left"):
        buf.set(core + "VadNode.Left", left)
        buf.set(core + "VadNode.Right", right)
        buf.set(core + "VadNode.ParentValue", parent)
    elif buf.has(core + "LeftChild"):
        buf.set(core + "LeftChild", left)
        buf.set(core + "RightChild", right)
        buf.set(core + "u1.Parent", parent)
    else:
        raise LayoutError(f"{m.layout.source}: _MMVAD_SHORT has neither VadNode nor LeftChild/RightChild")


def _set_range(buf: StructBuffer, core: str, vad: VadPlan) -> None:
    start_vpn, end_vpn = vad.start >> 12, vad.end >> 12
    if buf.has(core + "StartingVpnHigh"):
        buf.set(core + "StartingVpn", start_vpn & 0xFFFFFFFF)
        buf.set(core + "EndingVpn", end_vpn & 0xFFFFFFFF)
        buf.set(core + "StartingVpnHigh", start_vpn >> 32)
        buf.set(core + "EndingVpnHigh", end_vpn >> 32)
    else:
        buf.set(core + "StartingVpn", start_vpn)
        buf.set(core + "EndingVpn", end_vpn)


def _set_flags(m: Machine, buf: StructBuffer, core: str, vad: VadPlan) -> None:
    flags = core + "u.VadFlags."
    buf.set(flags + "Protection", vad.protection)
    buf.set(flags + "PrivateMemory", 1 if vad.private else 0)
    buf.set_if(flags + "VadType", VAD_TYPE_IMAGE if vad.kind == "image" else VAD_TYPE_NONE)
    for path in (core + "u1.VadFlags1.CommitCharge", flags + "CommitCharge"):
        if buf.set_if(path, vad.commit_pages):
            break
    for path in (core + "u1.VadFlags1.MemCommit", flags + "MemCommit"):
        if buf.set_if(path, 1 if vad.private and vad.commit_pages else 0):
            break
