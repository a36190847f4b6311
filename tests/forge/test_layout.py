"""The symbol-table abstraction, the shipped default layout (Windows 10 22H2) and the ABI definitions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callstack_forensics.forge.abi_layout import abi_layout
from callstack_forensics.forge.builds import windows_version
from callstack_forensics.forge.default_layout import default_isf_path, default_layout
from callstack_forensics.forge.layout import Layout, LayoutError, StructBuffer
from callstack_forensics.forge.structdef import F, StructCompiler, U8, U32, U64, Bits, Overlay, struct

def test_struct_compiler_aligns_packs_and_pins():
    comp = StructCompiler([
        struct("A", F("a", U8), F("b", U64), Bits("unsigned long", (("x", 3), ("y", 5))), F("pinned", U32, 0x40)),
        struct("B", Overlay((F("whole", U64), Bits("unsigned long long", (("lo", 4),)))), F("a", U8)),
    ])
    types = comp.user_types()
    a = types["A"]["fields"]
    assert a["b"]["offset"] == 8 and a["x"]["offset"] == 16 and a["y"]["type"]["bit_position"] == 3
    assert a["pinned"]["offset"] == 0x40 and types["A"]["size"] == 0x48
    assert types["B"]["fields"]["lo"]["offset"] == 0 and types["B"]["fields"]["a"]["offset"] == 8


def test_default_layout_is_the_shipped_windows10_22h2_table():
    """Exactly one real table ships, with its licence beside it; the default layout is that build."""
    layout = default_layout()
    assert layout.identifier == "606FF669409B00F7FC8C61A9C1670129-1"
    assert windows_version(layout).label == "10.0.19041.3570"
    folder = default_isf_path().parent
    assert sorted(p.name for p in folder.iterdir()) == ["606FF669409B00F7FC8C61A9C1670129-1.json.xz", "LICENSE.JPCERTCC"]
    assert "BSD" in (folder / "LICENSE.JPCERTCC").read_text()
    tables = list(default_isf_path().parents[4].rglob("*.json*"))  # the whole package
    assert tables == [default_isf_path()]


def test_fields_resolve_through_nesting_and_bitfields():
    layout = default_layout()
    ref = layout.field("_MMVAD_SHORT", "u.VadFlags.Protection")
    assert ref.is_bitfield and ref.bit_length == 5
    assert layout.offset("_KUSER_SHARED_DATA", "NtMajorVersion") == 0x26C  # Volatility reads it at a fixed offset
    assert layout.offset("_POOL_HEADER", "PoolTag") == 4 and layout.type_size("_POOL_HEADER") == 16
    assert layout.offset("_MMVAD_SHORT", "VadNode") == 0 and layout.offset("_MMVAD", "Core") == 0
    assert layout.offset("_TEB", "TlsSlots[1]") == 0x1488
    assert layout.offset("_EPROCESS", "UniqueProcessId") == 0x440  # the 19041 offset every tool knows


def test_struct_buffer_writes_bitfields_without_clobbering():
    buf = StructBuffer(default_layout(), "_MMVAD_SHORT")
    buf.set("u.VadFlags.Protection", 6)
    buf.set("u.VadFlags.PrivateMemory", 1)
    assert buf.get("u.VadFlags.Protection") == 6 and buf.get("u.VadFlags.PrivateMemory") == 1
    buf.set("u.VadFlags.Protection", 0x3F)  # masked to 5 bits
    assert buf.get("u.VadFlags.Protection") == 0x1F and buf.get("u.VadFlags.PrivateMemory") == 1


def test_missing_field_error_names_it():
    with pytest.raises(LayoutError, match=r"_EPROCESS\.NoSuchField"):
        default_layout().field("_EPROCESS", "NoSuchField")
    with pytest.raises(LayoutError, match="no type _NOPE"):
        default_layout().type_size("_NOPE")


def test_bad_isf_file_gives_clear_error(tmp_path: Path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"metadata": {}}))
    with pytest.raises(LayoutError, match="not an ISF"):
        Layout.load(bad)
    with pytest.raises(LayoutError, match="cannot read ISF"):
        Layout.load(tmp_path / "missing.json.xz")


def test_real_isf_loads(real_isf: Path):
    real = Layout.load(real_isf)
    assert real.identifier == real_isf.name[: -len(".json.xz")]
    assert real.offset("_EPROCESS", "UniqueProcessId") > 0 and real.type_size("_ETHREAD") > 0x400


def test_abi_layout_matches_volatility_wow64_table():
    """Volatility reads the 32-bit PEB and loader entries with its own wow64.json: ours must agree."""
    import volatility3.framework.symbols.windows as winsyms

    wow = json.loads((Path(winsyms.__file__).parent / "wow64.json").read_text())["user_types"]
    abi = abi_layout()
    pairs = [("_PEB32", "_PEB32", ["ImageBaseAddress", "Ldr", "ProcessParameters"]),
             ("_PEB_LDR_DATA32", "_PEB_LDR_DATA", ["InLoadOrderModuleList", "InMemoryOrderModuleList",
                                                   "InInitializationOrderModuleList"]),
             ("_LDR_DATA_TABLE_ENTRY32", "_LDR_DATA_TABLE_ENTRY", ["InLoadOrderLinks", "InMemoryOrderLinks",
                                                                  "DllBase", "SizeOfImage", "FullDllName",
                                                                  "BaseDllName"])]
    for ours, theirs, fields in pairs:
        for name in fields:
            assert abi.offset(ours, name) == wow[theirs]["fields"][name]["offset"], (ours, name)
