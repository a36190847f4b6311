"""The implant checks in the events a process gets, and the shipped rules on those events."""

from __future__ import annotations

import datetime as dt

from callstack_forensics.engine.context import ProcessContext, WalkOptions
from callstack_forensics.engine.modules import ImageCache
from callstack_forensics.engine.stack import StopReason, ThreadStack
from callstack_forensics.events import ProcessView, Snapshot, build_events
from callstack_forensics.memory import ThreadInfo
from callstack_forensics.memory.implantstate import ApcState, DebugRegisters, MappedFile, QueuedApc
from callstack_forensics.rules import default_rules_dir, load_rules

from .helpers import AMSI, BODY, SHELLCODE, SYS32, ImplantProcess, export_address, image_with
from .test_reflective import mapped_dll

CAPTURE = dt.datetime(2024, 5, 14, 10, 22, 31, tzinfo=dt.timezone.utc)
RULES = load_rules([default_rules_dir()])
VERSION = 0x7FFB9F6A0000
REFLECTIVE = 0x26000000


def events(proc: ImplantProcess, threads: list[ThreadInfo]) -> list[dict]:
    ctx = ProcessContext(proc, WalkOptions(), ImageCache())
    stacks = [ThreadStack(proc.process.pid, t.tid, proc.process.name, [], StopReason.NO_CONTEXT, thread=t)
              for t in threads]
    return build_events(Snapshot([ProcessView(proc.process, ctx, stacks)], CAPTURE))


def implanted() -> tuple[ImplantProcess, list[ThreadInfo]]:
    proc = ImplantProcess()
    proc.map_image(AMSI, image_with({"AmsiOpenSession": BODY, "AmsiScanBuffer": BODY}, "amsi.dll"),
                   SYS32 + "amsi.dll", private=0x1000)
    proc.patch(export_address(AMSI, 1), bytes.fromhex("b857000780c3"))
    proc.map_image(VERSION, image_with({"GetFileVersionInfoW": BODY}, "version.dll"), SYS32 + "version.dll")
    proc.mapped[VERSION] = MappedFile(0xFFFFB40A12188A70, "\\Windows\\System32\\version.dll", False, 0xFFFFB40A1219000)
    proc.map_private(SHELLCODE, b"\x90" * 0x100)
    proc.map_private(REFLECTIVE, mapped_dll(12), "RWX")
    breakpoint = ThreadInfo(8, object_address=0xFFFFB40A1202F040, state="Waiting",
                            debug_registers=DebugRegisters(export_address(AMSI, 0), 0, 0, 0, 0, 0x1, "trap frame"))
    apc = ThreadInfo(12, object_address=0xFFFFB40A1202F440, state="Waiting",
                     apc_state=ApcState((QueuedApc(0xFFFFB40A1202F3C0, "user", SHELLCODE, 0, 0, 0),), True, "user", True))
    return proc, [breakpoint, apc]


def fired(evts: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for match in RULES.run(evts):
        out.setdefault(match.rule.name, []).extend(match.events)
    return out


def test_each_check_fires_its_rule_on_the_events_with_evidence_that_says_why():
    proc, threads = implanted()
    got = fired(events(proc, threads))
    assert set(got) == {"Hardware Breakpoint on an Exported Function", "User APC Queued to Unbacked or RWX Memory",
                        "System DLL Export Patched in Memory", "Image Mapped from a Deleted, Transacted or Different File",
                        "PE Image in Private Executable Memory", "Module with Private Executable Pages"}
    [bp] = got["Hardware Breakpoint on an Exported Function"]
    assert bp["process"]["thread"]["id"] == 8 and "dr0 = " in bp["evidence"]["detail"]
    [apc] = got["User APC Queued to Unbacked or RWX Memory"]
    assert apc["process"]["thread"]["Ext"]["alertable"] is True and "runs Unbacked (RWX)" in apc["evidence"]["detail"]
    [patched] = got["System DLL Export Patched in Memory"]
    assert "mov eax, 0x80070057 ; ret" in patched["evidence"]["detail"]
    [phantom] = got["Image Mapped from a Deleted, Transacted or Different File"]
    assert phantom["dll"]["Ext"]["defense_evasions"] == ["transacted_image_file"]
    [region] = got["PE Image in Private Executable Memory"]
    assert region["event"]["action"] == "memory_region" and region["evidence"]["object"] == "_MMVAD"
    assert region["process"]["Ext"]["memory_region"]["allocation_base"] == hex(REFLECTIVE)


def test_a_clean_process_gets_none_of_the_fields():
    proc = ImplantProcess()
    proc.map_image(AMSI, image_with({"AmsiScanBuffer": BODY}, "amsi.dll"), SYS32 + "amsi.dll")
    evts = events(proc, [ThreadInfo(8, state="Waiting")])
    assert fired(evts) == {}
    assert [e["event"]["category"][0] for e in evts] == ["process", "library", "thread"]
    assert "hardware_breakpoint_set" not in evts[-1]["process"]["thread"]["Ext"]
    assert "defense_evasions" not in evts[0]["process"]["Ext"]
