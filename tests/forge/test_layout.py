"""The symbol-table abstraction and the bundled layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callstack_forensics.forge.bundled_layout import abi_layout, bundled_isf, bundled_layout
from callstack_forensics.forge.layout import Layout, LayoutError, StructBuffer
from callstack_forensics.forge.structdef import F, StructCompiler, U8, U32, U64, Bits, Overlay, struct

# Fields consumers are most tempted to hard-code: the bundled layout must not agree with any real build.
VOLATILE_FIELDS = [
    ("_EPROCESS", "ImageFileName"), ("_EPROCESS", "UniqueProcessId"), ("_EPROCESS", "Peb"),
    ("_EPROCESS", "VadRoot"), ("_EPROCESS", "ThreadListHead"), ("_KTHREAD", "TrapFrame"),
    ("_KTHREAD", "Teb"), ("_KTHREAD", "KernelStack"), ("_ETHREAD", "Cid"), ("_KTHREAD", "State"),
]


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


def test_bundled_guid_is_content_derived_and_stable():
    first = bundled_isf()["metadata"]["windows"]["pdb"]["GUID"]
    layout = bundled_layout()
    assert layout.guid == first and len(first) == 32 and layout.age == 1
    assert layout.identifier == f"{first}-1"


def test_bundled_fields_resolve_through_nesting_and_bitfields():
    layout = bundled_layout()
    ref = layout.field("_MMVAD_SHORT", "u.VadFlags.Protection")
    assert ref.is_bitfield and ref.bit_length == 5
    assert layout.offset("_KUSER_SHARED_DATA", "NtMajorVersion") == 0x26C  # Volatility reads it at a fixed offset
    assert layout.offset("_POOL_HEADER", "PoolTag") == 4 and layout.type_size("_POOL_HEADER") == 16
    assert layout.offset("_MMVAD_SHORT", "VadNode") == 0 and layout.offset("_MMVAD", "Core") == 0
    assert layout.offset("_TEB", "TlsSlots[1]") == 0x1488


def test_struct_buffer_writes_bitfields_without_clobbering():
    buf = StructBuffer(bundled_layout(), "_MMVAD_SHORT")
    buf.set("u.VadFlags.Protection", 6)
    buf.set("u.VadFlags.PrivateMemory", 1)
    assert buf.get("u.VadFlags.Protection") == 6 and buf.get("u.VadFlags.PrivateMemory") == 1
    buf.set("u.VadFlags.Protection", 0x3F)  # masked to 5 bits
    assert buf.get("u.VadFlags.Protection") == 0x1F and buf.get("u.VadFlags.PrivateMemory") == 1


def test_missing_field_error_names_it():
    with pytest.raises(LayoutError, match=r"_EPROCESS\.NoSuchField"):
        bundled_layout().field("_EPROCESS", "NoSuchField")
    with pytest.raises(LayoutError, match="no type _NOPE"):
        bundled_layout().type_size("_NOPE")


def test_bad_isf_file_gives_clear_error(tmp_path: Path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"metadata": {}}))
    with pytest.raises(LayoutError, match="not an ISF"):
        Layout.load(bad)
    with pytest.raises(LayoutError, match="cannot read ISF"):
        Layout.load(tmp_path / "missing.json.xz")


def test_real_isf_loads_and_differs_from_bundled(real_isf: Path):
    real = Layout.load(real_isf)
    bundled = bundled_layout()
    assert real.identifier == real_isf.name[: -len(".json.xz")]
    for struct_name, field in VOLATILE_FIELDS:
        assert real.offset(struct_name, field) != bundled.offset(struct_name, field), (struct_name, field)


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
