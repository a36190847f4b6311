"""A kernel symbol table (Volatility ISF) seen as struct layouts the forge can write.

The forge never knows an offset by heart: every struct size, field offset,
bitfield position, enum value and kernel symbol address comes from here, read
from an ISF (the shipped default, Windows 10 22H2, or another real kernel build).
Only the JSON is read; Volatility itself is never imported, so the core package
stays independent of it.
"""

from __future__ import annotations

import json
import lzma
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

TypeDesc = Mapping[str, Any]


class LayoutError(Exception):
    """The symbol table lacks something the forge needs; the message names it."""


@dataclass(frozen=True, slots=True)
class FieldRef:
    """Where a (possibly nested) field lives inside its outermost struct.

    ``bit_position``/``bit_length`` are set for bitfields; ``type`` is then the
    storage unit's type.
    """

    path: str
    offset: int
    type: TypeDesc
    size: int
    bit_position: int | None = None
    bit_length: int | None = None

    @property
    def is_bitfield(self) -> bool:
        return self.bit_length is not None


_INDEX = re.compile(r"^(?P<name>[^\[\]]+)(?:\[(?P<index>\d+)\])?$")


class Layout:
    """Struct sizes, field offsets, enums and symbols of one kernel build."""

    def __init__(self, isf: Mapping[str, Any], source: str) -> None:
        self.source = source
        self._isf = isf
        for key in ("base_types", "user_types", "symbols", "enums", "metadata"):
            if key not in isf:
                raise LayoutError(f"{source}: not an ISF (no '{key}' section)")
        self._types: Mapping[str, Any] = isf["user_types"]
        self._bases: Mapping[str, Any] = isf["base_types"]
        self._enums: Mapping[str, Any] = isf["enums"]
        self._symbols: Mapping[str, Any] = isf["symbols"]
        pdb = isf["metadata"].get("windows", {}).get("pdb", {})
        if not pdb.get("GUID"):
            raise LayoutError(f"{source}: ISF metadata has no windows.pdb.GUID")
        self.guid: str = str(pdb["GUID"]).upper()
        self.age: int = int(pdb.get("age", 1))
        self.pdb_name: str = str(pdb.get("database", "ntkrnlmp.pdb"))
        if self.base_size("pointer") != 8:
            raise LayoutError(f"{source}: not a 64-bit symbol table (pointer size {self.base_size('pointer')})")

    # ---- loading ----------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> "Layout":
        """Load a ``.json`` or ``.json.xz`` ISF file."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise LayoutError(f"cannot read ISF {path}: {exc.strerror}") from exc
        if path.suffix == ".xz":
            try:
                raw = lzma.decompress(raw)
            except lzma.LZMAError as exc:
                raise LayoutError(f"{path}: not xz-compressed ({exc})") from exc
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise LayoutError(f"{path}: not JSON ({exc})") from exc
        return cls(data, str(path))

    @property
    def isf(self) -> Mapping[str, Any]:
        return self._isf

    @property
    def identifier(self) -> str:
        """``<GUID>-<AGE>``, the name Volatility looks the table up by."""
        return f"{self.guid}-{self.age}"

    # ---- types ------------------------------------------------------------

    def has_type(self, name: str) -> bool:
        return name in self._types

    def type_size(self, name: str) -> int:
        return int(self._struct(name)["size"])

    def base_size(self, name: str) -> int:
        if name not in self._bases:
            raise LayoutError(f"{self.source}: no base type '{name}'")
        return int(self._bases[name]["size"])

    def base_signed(self, name: str) -> bool:
        return bool(self._bases[name].get("signed", False))

    def size_of(self, desc: TypeDesc) -> int:
        """Size in bytes of any ISF type descriptor."""
        kind = desc["kind"]
        if kind == "base":
            return 0 if desc["name"] == "void" else self.base_size(desc["name"])
        if kind == "pointer":
            return self.base_size("pointer")
        if kind in ("struct", "union", "class"):
            return self.type_size(desc["name"])
        if kind == "array":
            return int(desc["count"]) * self.size_of(desc["subtype"])
        if kind == "enum":
            return int(self._enum(desc["name"])["size"])
        if kind == "bitfield":
            return self.size_of(desc["type"])
        raise LayoutError(f"{self.source}: cannot size a '{kind}' type")

    def has_field(self, struct: str, path: str) -> bool:
        try:
            self.field(struct, path)
        except LayoutError:
            return False
        return True

    def field(self, struct: str, path: str) -> FieldRef:
        """Resolve ``path`` (``a.b.c`` or ``a[2].b``) inside ``struct``."""
        offset = 0
        current: TypeDesc = {"kind": "struct", "name": struct}
        bit_position = bit_length = None
        walked: list[str] = []
        for part in path.split("."):
            match = _INDEX.match(part)
            if not match:
                raise LayoutError(f"{self.source}: bad field path '{path}'")
            name, index = match.group("name"), match.group("index")
            if current["kind"] not in ("struct", "union", "class"):
                raise LayoutError(f"{self.source}: {struct}.{'.'.join(walked)} is not a struct, cannot take '{name}'")
            fields = self._struct(current["name"])["fields"]
            if name not in fields:
                where = f"{struct}.{'.'.join(walked + [name])}"
                raise LayoutError(f"{self.source}: the symbol table has no field {where}")
            entry = fields[name]
            offset += int(entry["offset"])
            current = entry["type"]
            walked.append(part)
            if current["kind"] == "bitfield":
                bit_position, bit_length = int(current["bit_position"]), int(current["bit_length"])
                current = current["type"]
            if index is not None:
                if current["kind"] != "array":
                    raise LayoutError(f"{self.source}: {struct}.{'.'.join(walked)} is not an array")
                if int(index) >= int(current["count"]):
                    raise LayoutError(f"{self.source}: index {index} out of {struct}.{name}[{current['count']}]")
                current = current["subtype"]
                offset += int(index) * self.size_of(current)
        return FieldRef(path, offset, current, self.size_of(current), bit_position, bit_length)

    def offset(self, struct: str, path: str) -> int:
        return self.field(struct, path).offset

    def pointee(self, struct: str, path: str) -> str | None:
        """The struct a pointer field points to (None for ``void *`` and non-pointers)."""
        desc = self.field(struct, path).type
        if desc["kind"] != "pointer":
            return None
        sub = desc["subtype"]
        return sub.get("name") if sub["kind"] in ("struct", "union") else None

    # ---- enums and symbols ------------------------------------------------

    def has_enum(self, name: str) -> bool:
        return name in self._enums

    def enum_value(self, enum: str, constant: str) -> int:
        constants = self._enum(enum)["constants"]
        if constant not in constants:
            known = ", ".join(sorted(constants))
            raise LayoutError(f"{self.source}: enum {enum} has no '{constant}' (known: {known})")
        return int(constants[constant])

    def enum_constants(self, enum: str) -> Mapping[str, int]:
        return self._enum(enum)["constants"]

    def has_symbol(self, name: str) -> bool:
        return name in self._symbols

    def symbol(self, name: str) -> int:
        """A kernel symbol's address relative to the kernel base."""
        if name not in self._symbols:
            raise LayoutError(f"{self.source}: the symbol table has no symbol '{name}'")
        return int(self._symbols[name]["address"])

    def symbol_names(self) -> list[str]:
        return list(self._symbols)

    # ---- internals ----------------------------------------------------------

    def _struct(self, name: str) -> Mapping[str, Any]:
        if name not in self._types:
            raise LayoutError(f"{self.source}: the symbol table has no type {name}")
        return self._types[name]

    def _enum(self, name: str) -> Mapping[str, Any]:
        if name not in self._enums:
            raise LayoutError(f"{self.source}: the symbol table has no enum {name}")
        return self._enums[name]


class StructBuffer:
    """One instance of a struct as bytes, written field by field through a :class:`Layout`.

    Values are written little-endian and masked to the field's width, bitfields
    are merged into their storage unit, so callers never pack by hand.
    """

    def __init__(self, layout: Layout, type_name: str, size: int | None = None) -> None:
        self.layout = layout
        self.type_name = type_name
        self.data = bytearray(size if size is not None else layout.type_size(type_name))

    def __len__(self) -> int:
        return len(self.data)

    def has(self, path: str) -> bool:
        return self.layout.has_field(self.type_name, path)

    def offset(self, path: str) -> int:
        return self.layout.offset(self.type_name, path)

    def set(self, path: str, value: int) -> None:
        """Write an integer, pointer, enum or bitfield value."""
        ref = self.layout.field(self.type_name, path)
        self._check_scalar(ref)
        width = ref.size
        if ref.is_bitfield:
            assert ref.bit_position is not None and ref.bit_length is not None
            mask = ((1 << ref.bit_length) - 1) << ref.bit_position
            old = int.from_bytes(self.data[ref.offset : ref.offset + width], "little")
            value = (old & ~mask) | ((int(value) << ref.bit_position) & mask)
        self.data[ref.offset : ref.offset + width] = (int(value) & ((1 << (8 * width)) - 1)).to_bytes(width, "little")

    def set_if(self, path: str, value: int) -> bool:
        """Write the field when this build has it; say whether it did."""
        if not self.has(path):
            return False
        self.set(path, value)
        return True

    def set_bytes(self, path: str, data: bytes) -> None:
        """Copy raw bytes into a field (char arrays, GUIDs); truncated to the field."""
        ref = self.layout.field(self.type_name, path)
        chunk = bytes(data[: ref.size])
        self.data[ref.offset : ref.offset + len(chunk)] = chunk

    def get(self, path: str) -> int:
        ref = self.layout.field(self.type_name, path)
        value = int.from_bytes(self.data[ref.offset : ref.offset + ref.size], "little")
        if ref.is_bitfield:
            assert ref.bit_position is not None and ref.bit_length is not None
            value = (value >> ref.bit_position) & ((1 << ref.bit_length) - 1)
        return value

    def _check_scalar(self, ref: FieldRef) -> None:
        kind = ref.type["kind"]
        if kind not in ("base", "pointer", "enum"):
            raise LayoutError(f"{self.layout.source}: {self.type_name}.{ref.path} is a {kind}, not a scalar")
