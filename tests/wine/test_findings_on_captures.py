"""The shipped rules on every Wine capture, through the CLI: each program gets exactly the findings
its state stages, and none of the benign states (callbacks, APCs on an interrupted wait, exception
handlers, thread pools...) raises one.

The frame below one of ntdll's kernel entry points (KiUserApcDispatcher, KiUserExceptionDispatcher)
is the instruction the kernel interrupted, not a return address: read as one, it raised "Return
Address Not Preceded by a Call" on the alertable and exceptions programs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .build import PROGRAMS
from .capture import CaptureResult

pytestmark = pytest.mark.wine

CLI = Path(sys.executable).parent / "callstack-forensics"
STAGED = {
    "rwx_syscall": {"Call Stack Frame in RWX Memory", "System Call Issued Outside ntdll or win32u"},
    "shellcode": {"Call Stack Frame in RWX Memory", "Waiting Thread Returning into Unbacked Executable Memory"},
    "sleepmask": {"Thread Returns Into Non-Executable Memory", "Sleep Obfuscation CONTEXT Records in Private Memory"},
    # its APC routine is RWX shellcode that sleeps: the frame rules fire beside the implant-state ones
    "implants": {"Hardware Breakpoint on an Exported Function", "User APC Queued to Unbacked or RWX Memory",
                 "System DLL Export Patched in Memory", "PE Image in Private Executable Memory",
                 "Call Stack Frame in RWX Memory", "Waiting Thread Returning into Unbacked Executable Memory"},
}


def findings(dump: Path) -> list[dict]:
    done = subprocess.run([str(CLI), "analyze", str(dump), "--json", "--quiet"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)["findings"]


@pytest.mark.parametrize("name", [p.name for p in PROGRAMS])
def test_each_program_gets_exactly_the_findings_its_state_stages(captures: dict[str, CaptureResult], name):
    found = findings(captures[name].directory / "full.dmp")
    assert {f["rule"]["name"] for f in found} == STAGED.get(name, set())


def test_the_sleeping_implant_is_found_on_its_thread_in_the_dump(captures: dict[str, CaptureResult], tmp_path):
    capture = captures["sleepmask"]
    ready = json.loads((capture.directory / "self.json").read_text())
    [sleeper] = [t for t in ready["threads"] if t["role"] == "sleeper_rw"]
    found = findings(capture.directory / "full.dmp")
    assert {f["tid"] for f in found} == {sleeper["tid"]}
    assert all(f["stack_prevalence"]["unique"] for f in found)
    out = tmp_path / "events.ndjson"
    done = subprocess.run([str(CLI), "events", str(capture.directory / "full.dmp"), "-o", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    [thread] = [e for e in events if e.get("process", {}).get("thread", {}).get("id") == sleeper["tid"]]
    ext = thread["process"]["thread"]["Ext"]
    [record] = ext["context_records"]
    assert int(record["address"], 16) == int(sleeper["context_record"], 16)
    assert record["rip_symbol"] == "ntdll.dll!NtContinue"
    [failure] = ext["stack_integrity"]["failures"]
    assert failure["check"] == "return_into_non_executable"
    assert ext["call_stack"][failure["frames"][0]]["protection"] == "RW-"
