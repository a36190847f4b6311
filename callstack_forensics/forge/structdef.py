"""A tiny C-struct language that compiles to Volatility ISF ``user_types``.

The fixed-ABI structures (abi_layout) are written as Python declarations (field order,
types, bitfield widths); offsets and sizes are computed here with natural x64
alignment, unless a declaration pins an offset (user-mode structures whose
offsets are a fixed ABI, e.g. the PEB, TEB or KUSER_SHARED_DATA).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Union

BASE_TYPES: dict[str, tuple[str, int, bool]] = {
    # name: (kind, size, signed)
    "char": ("char", 1, True),
    "unsigned char": ("char", 1, False),
    "short": ("int", 2, True),
    "unsigned short": ("int", 2, False),
    "wchar": ("int", 2, True),
    "int": ("int", 4, True),
    "unsigned int": ("int", 4, False),
    "long": ("int", 4, True),
    "unsigned long": ("int", 4, False),
    "long long": ("int", 8, True),
    "unsigned long long": ("int", 8, False),
    "pointer": ("int", 8, False),
    "void": ("void", 0, True),
    "HRESULT": ("int", 4, False),
    "f32": ("float", 4, True),
    "double": ("float", 8, True),
}


@dataclass(frozen=True, slots=True)
class T:
    """A type expression: base, pointer, array, struct, union or enum."""

    kind: str
    name: str | None = None
    sub: "T | None" = None
    count: int = 0

    def desc(self) -> dict[str, Any]:
        if self.kind == "base":
            return {"kind": "base", "name": self.name}
        if self.kind == "pointer":
            return {"kind": "pointer", "subtype": (self.sub or VOID).desc()}
        if self.kind == "array":
            assert self.sub is not None
            return {"kind": "array", "count": self.count, "subtype": self.sub.desc()}
        return {"kind": self.kind, "name": self.name}


VOID = T("base", "void")


def base(name: str) -> T:
    if name not in BASE_TYPES:
        raise ValueError(f"unknown base type {name}")
    return T("base", name)


def ptr(sub: T | None = None) -> T:
    return T("pointer", sub=sub or VOID)


def arr(sub: T, count: int) -> T:
    return T("array", sub=sub, count=count)


def st(name: str) -> T:
    return T("struct", name)


def un(name: str) -> T:
    return T("union", name)


def en(name: str) -> T:
    return T("enum", name)


U8, U16, U32, U64 = base("unsigned char"), base("unsigned short"), base("unsigned long"), base("unsigned long long")
I8, I16, I32, I64 = base("char"), base("short"), base("long"), base("long long")
WCHAR = base("wchar")
PVOID = ptr()


@dataclass(frozen=True, slots=True)
class F:
    """A field; ``at`` pins its offset (ABI-fixed structures)."""

    name: str
    type: T
    at: int | None = None


@dataclass(frozen=True, slots=True)
class Bits:
    """Consecutive bitfields sharing one storage unit of type ``unit``."""

    unit: str
    widths: tuple[tuple[str, int], ...]
    at: int | None = None


@dataclass(frozen=True, slots=True)
class Overlay:
    """Members that share one offset (an anonymous union flattened into its struct, as PDBs show them)."""

    members: tuple[Union[F, Bits], ...]
    at: int | None = None


Member = Union[F, Bits, Overlay]


@dataclass(frozen=True, slots=True)
class StructDef:
    name: str
    members: tuple[Member, ...]
    kind: str = "struct"
    size: int | None = None


@dataclass(frozen=True, slots=True)
class EnumDef:
    name: str
    base: str
    constants: Mapping[str, int]


def struct(name: str, *members: Member, size: int | None = None) -> StructDef:
    return StructDef(name, tuple(members), "struct", size)


def union(name: str, *members: Member, size: int | None = None) -> StructDef:
    return StructDef(name, tuple(members), "union", size)


@dataclass
class _Compiled:
    size: int
    align: int
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)


class StructCompiler:
    """Computes offsets and sizes of a set of :class:`StructDef` and emits ISF dictionaries."""

    def __init__(self, structs: Iterable[StructDef], enums: Iterable[EnumDef] = ()) -> None:
        self._defs: dict[str, StructDef] = {}
        for sdef in structs:
            if sdef.name in self._defs:
                raise ValueError(f"struct {sdef.name} declared twice")
            self._defs[sdef.name] = sdef
        self._enums = {e.name: e for e in enums}
        self._done: dict[str, _Compiled] = {}
        self._busy: set[str] = set()

    def user_types(self) -> dict[str, Any]:
        out = {}
        for name in self._defs:
            comp = self._compile(name)
            out[name] = {"kind": self._defs[name].kind, "size": comp.size, "fields": comp.fields}
        return out

    def enums(self) -> dict[str, Any]:
        return {
            e.name: {"base": e.base, "size": BASE_TYPES[e.base][1], "constants": dict(e.constants)}
            for e in self._enums.values()
        }

    @staticmethod
    def base_types() -> dict[str, Any]:
        return {
            name: {"endian": "little", "kind": kind, "signed": signed, "size": size}
            for name, (kind, size, signed) in BASE_TYPES.items()
        }

    # ---- layout -------------------------------------------------------------

    def _size_align(self, t: T) -> tuple[int, int]:
        if t.kind == "base":
            size = BASE_TYPES[t.name or "void"][1]
            return size, max(size, 1)
        if t.kind == "pointer":
            return 8, 8
        if t.kind == "array":
            assert t.sub is not None
            size, align = self._size_align(t.sub)
            return size * t.count, align
        if t.kind == "enum":
            if t.name not in self._enums:
                raise ValueError(f"unknown enum {t.name}")
            size = BASE_TYPES[self._enums[t.name].base][1]
            return size, size
        comp = self._compile(t.name or "")
        return comp.size, comp.align

    def _compile(self, name: str) -> _Compiled:
        if name in self._done:
            return self._done[name]
        if name not in self._defs:
            raise ValueError(f"struct {name} is used but not declared")
        if name in self._busy:
            raise ValueError(f"struct {name} contains itself")
        self._busy.add(name)
        sdef = self._defs[name]
        comp = _Compiled(0, 1)
        cursor = 0
        for member in sdef.members:
            start = 0 if sdef.kind == "union" else cursor
            end = self._place(comp, member, start)
            cursor = max(cursor, end) if sdef.kind == "struct" else cursor
            comp.size = max(comp.size, end)
        size = _round_up(comp.size, comp.align)
        if sdef.size is not None:
            if sdef.size < comp.size:
                raise ValueError(f"struct {name}: declared size {sdef.size:#x} < content {comp.size:#x}")
            size = sdef.size
        comp.size = size
        self._busy.discard(name)
        self._done[name] = comp
        return comp

    def _place(self, comp: _Compiled, member: Member, cursor: int) -> int:
        """Place one member at or after ``cursor``; return the end offset."""
        if isinstance(member, F):
            size, align = self._size_align(member.type)
            offset = member.at if member.at is not None else _round_up(cursor, align)
            comp.align = max(comp.align, align)
            self._add(comp, member.name, offset, member.type.desc())
            return offset + size
        if isinstance(member, Bits):
            unit = BASE_TYPES[member.unit][1]
            offset = member.at if member.at is not None else _round_up(cursor, unit)
            comp.align = max(comp.align, unit)
            position = 0
            for fname, width in member.widths:
                if position + width > unit * 8:
                    raise ValueError(f"bitfield {fname} overflows its {member.unit}")
                desc = {"kind": "bitfield", "bit_position": position, "bit_length": width,
                        "type": {"kind": "base", "name": member.unit}}
                if not fname.startswith("_"):
                    self._add(comp, fname, offset, desc)
                position += width
            return offset + unit
        # Overlay: every member at the same offset
        aligns = [self._member_align(m) for m in member.members]
        offset = member.at if member.at is not None else _round_up(cursor, max(aligns))
        end = offset
        for sub in member.members:
            pinned = F(sub.name, sub.type, offset) if isinstance(sub, F) else Bits(sub.unit, sub.widths, offset)
            end = max(end, self._place(comp, pinned, offset))
        return end

    def _member_align(self, member: Union[F, Bits]) -> int:
        if isinstance(member, F):
            return self._size_align(member.type)[1]
        return BASE_TYPES[member.unit][1]

    @staticmethod
    def _add(comp: _Compiled, name: str, offset: int, desc: dict[str, Any]) -> None:
        if name in comp.fields:
            raise ValueError(f"field {name} declared twice")
        comp.fields[name] = {"offset": offset, "type": desc}


def _round_up(value: int, align: int) -> int:
    return (value + align - 1) // align * align
