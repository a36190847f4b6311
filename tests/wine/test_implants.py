"""The implant checks (issue 15, checks 7-10) on real dumps of a program that implants itself under
Wine (src/implants.c), and silence on the dumps of every other test program.

What a process dump holds: the threads' debug registers (the dumper records them as Windows'
dbghelp does), the patched export bytes, the PE copies in private memory. What it cannot hold is a
thread's APC queue (kernel state): the APC the program queued into RWX memory must produce no
finding, in either direction, and the README says so; the APC it made run in RWX memory shows in the
running thread's stack, above the APC dispatcher.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callstack_forensics.analysis import AnalysisOptions, analyze
from callstack_forensics.rules import default_rules_dir, load_rules
from callstack_forensics.sources import MinidumpSource

from .build import BIN, PROGRAMS
from .capture import CaptureResult
from .wineprefix import PREFIX

pytestmark = pytest.mark.wine

SYSTEM32 = PREFIX / "drive_c" / "windows" / "system32"
RULES = load_rules([default_rules_dir()])
IMPLANT_RULES = {"Hardware Breakpoint on an Exported Function", "User APC Queued to Unbacked or RWX Memory",
                 "System DLL Export Patched in Memory", "Image Mapped from a Deleted, Transacted or Different File",
                 "PE Image in Private Executable Memory"}


def findings(path: Path, modules: list[Path] = ()) -> list:
    result = analyze(MinidumpSource(path, modules), AnalysisOptions(ruleset=RULES))
    return [f for f in result.findings if f.rule_name in IMPLANT_RULES]


def ready(capture: CaptureResult) -> dict:
    threads = {t["role"]: t for t in capture.ready["threads"]}
    return {"threads": threads, **threads["apc_queued"]}


def by_rule(found: list) -> dict[str, list]:
    out: dict[str, list] = {}
    for finding in found:
        out.setdefault(finding.rule_name, []).append(finding)
    return out


def test_the_full_dump_shows_every_implant_a_dump_can_hold(captures: dict[str, CaptureResult]):
    capture = captures["implants"]
    told = ready(capture)
    got = by_rule(findings(capture.dump))
    assert set(got) == {"Hardware Breakpoint on an Exported Function", "System DLL Export Patched in Memory",
                        "PE Image in Private Executable Memory", "User APC Queued to Unbacked or RWX Memory"}
    [apc] = got["User APC Queued to Unbacked or RWX Memory"]
    assert apc.tid == told["threads"]["apc_running"]["tid"]
    [running] = apc.events[0]["process"]["thread"]["Ext"]["user_apcs"]
    code = int(told["threads"]["apc_running"]["apc_code"], 16)
    assert (running["state"], running["symbol_info"], running["protection"]) == ("running", "Unbacked", "RWX")
    assert code <= int(running["address"], 16) < code + 0x20
    [breakpoint] = got["Hardware Breakpoint on an Exported Function"]
    assert breakpoint.tid == told["threads"]["hwbp_amsi"]["tid"]
    [event] = breakpoint.events
    [bp] = event["process"]["thread"]["Ext"]["hardware_breakpoints"]
    assert (bp["address"], bp["export"], bp["condition"]) == (told["amsi_scan_buffer"], "AmsiScanBuffer", "execute")
    patched = {e["name"]: e for f in got["System DLL Export Patched in Memory"] for ev in f.events
               for e in ev["dll"]["Ext"]["patched_exports"]}
    assert set(patched) == {"AmsiScanBuffer", "EtwEventWrite"}
    assert patched["AmsiScanBuffer"]["address"] == told["amsi_scan_buffer"]
    assert patched["AmsiScanBuffer"]["disassembly"] == "mov eax, 0x80070057\nret"
    assert (patched["EtwEventWrite"]["address"], patched["EtwEventWrite"]["bytes"]) == (told["etw_event_write"], "c3")
    regions = {ev["process"]["Ext"]["memory_region"]["allocation_base"]: ev["process"]["Ext"]["memory_region"]
               for f in got["PE Image in Private Executable Memory"] for ev in f.events}
    assert set(regions) == {told["pe_copy"], told["pe_wiped"]}
    assert regions[told["pe_copy"]]["memory_pe"]["found_by"] == "header"
    assert regions[told["pe_wiped"]]["memory_pe"]["found_by"] == "pdata"


def test_the_watchpoint_thread_and_the_queued_apc_raise_nothing(captures: dict[str, CaptureResult]):
    capture = captures["implants"]
    told = ready(capture)
    tids = {f.tid for f in findings(capture.dump) if f.tid is not None}
    assert told["threads"]["hwbp_watch"]["tid"] not in tids
    assert told["threads"]["apc_queued"]["tid"] not in tids


def test_module_files_make_the_patch_a_difference_from_the_file(captures: dict[str, CaptureResult]):
    capture = captures["implants"]
    got = by_rule(findings(capture.dump, [BIN, SYSTEM32]))
    patched = {e["name"]: e for f in got["System DLL Export Patched in Memory"] for ev in f.events
               for e in ev["dll"]["Ext"]["patched_exports"]}
    assert set(patched) == {"AmsiScanBuffer", "EtwEventWrite"}
    assert patched["EtwEventWrite"]["file_bytes"] != "c3" and patched["AmsiScanBuffer"]["file_bytes"] != "b857000780c3"


def test_a_normal_dump_holds_no_patched_bytes_and_says_nothing_of_them(captures: dict[str, CaptureResult]):
    """Without module pages the bytes read are the files' own: never a patch. The thread running the APC
    is there (its stack, and the MemoryInfoList's RWX protection of the routine's page)."""
    capture = captures["implants"]
    got = by_rule(findings(capture.normal_dump, [BIN, SYSTEM32]))
    assert "System DLL Export Patched in Memory" not in got
    assert "Hardware Breakpoint on an Exported Function" in got  # the registers are in every dump's CONTEXT
    assert "User APC Queued to Unbacked or RWX Memory" in got  # the stack and the protections are in it


@pytest.mark.parametrize("name", [p.name for p in PROGRAMS if p.name != "implants"])
def test_no_implant_rule_fires_on_the_other_programs(captures: dict[str, CaptureResult], name):
    found = findings(captures[name].dump)
    assert found == [], json.dumps([(f.rule_name, f.tid, f.evidence) for f in found], default=str)[:2000]
