"""Check 7: hardware breakpoints in a thread's saved debug registers."""

from __future__ import annotations

import pytest

from callstack_forensics.events.implants import debugregs
from callstack_forensics.memory import ThreadInfo
from callstack_forensics.memory.implantstate import DebugRegisters

from .helpers import AMSI, BODY, HEAP, SYS32, ImplantProcess, context, export_address, image_with


def process() -> ImplantProcess:
    proc = ImplantProcess()
    proc.map_image(AMSI, image_with({"AmsiOpenSession": BODY, "AmsiScanBuffer": BODY}, "amsi.dll"), SYS32 + "amsi.dll")
    proc.map_private(HEAP, bytes(0x1000), "RW-")
    return proc


def registers(dr0=0, dr1=0, dr2=0, dr3=0, dr7=0) -> DebugRegisters:
    return DebugRegisters(dr0, dr1, dr2, dr3, 0, dr7, "test CONTEXT")


def fields(regs: DebugRegisters | None) -> tuple[dict, list[str]]:
    return debugregs.thread_fields(context(process()), ThreadInfo(8, debug_registers=regs))


def test_an_execution_breakpoint_on_amsiscanbuffer_is_named_and_on_an_export():
    got, details = fields(registers(dr0=export_address(AMSI, 1), dr7=0x1))
    assert got["hardware_breakpoint_set"] is True
    [bp] = got["hardware_breakpoints"]
    assert bp["register"] == "dr0" and bp["condition"] == "execute" and bp["scope"] == "local"
    assert bp["symbol_info"] == "c:\\windows\\system32\\amsi.dll!AmsiScanBuffer"
    assert bp["export"] == "AmsiScanBuffer" and bp["export_offset"] == 0 and bp["module"] == "amsi.dll"
    assert "Dr7 = 0x1" in details[0] and "amsi.dll!AmsiScanBuffer" in details[0]


def test_dr7_decodes_every_slot_condition_length_and_scope():
    regs = registers(dr0=HEAP, dr1=HEAP + 8, dr2=export_address(AMSI, 0) + 4, dr3=HEAP + 0x10,
                     dr7=0x2 | 0x4 | 0x30 | 0x40 | (0b1101 << 16) | (0b1011 << 20) | (0b0000 << 24) | (0b0111 << 28))
    got = {bp["register"]: bp for bp in fields(regs)[0]["hardware_breakpoints"]}
    assert (got["dr0"]["condition"], got["dr0"]["length"], got["dr0"]["scope"]) == ("write", 4, "global")
    assert (got["dr1"]["condition"], got["dr1"]["length"], got["dr1"]["scope"]) == ("read_write", 8, "local")
    assert (got["dr2"]["condition"], got["dr2"]["export"], got["dr2"]["export_offset"]) == ("execute", "AmsiOpenSession", 4)
    assert got["dr2"]["scope"] == "local|global"
    assert (got["dr3"]["condition"], got["dr3"]["length"], got["dr3"]["symbol_info"]) == ("read_write", 2, "Unbacked")


@pytest.mark.parametrize("regs", [None, registers(dr0=0x7FFBB0001020, dr7=0)], ids=["no registers", "not enabled"])
def test_no_fields_without_enabled_breakpoints(regs):
    assert fields(regs) == ({}, [])


def test_a_data_watchpoint_is_listed_but_not_on_an_export():
    proc = process()
    regs = registers(dr0=HEAP + 0x40, dr7=0x1 | (0b1101 << 16))
    [bp] = debugregs.breakpoints(context(proc), regs)
    assert not bp.on_export and bp.location.symbol_info == "Unbacked"
