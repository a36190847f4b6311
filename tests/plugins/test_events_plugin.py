"""`vol -p plugins callstacks.events` on forged images: valid ECS events with the evidence behind them."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from .conftest import vol_json, vol_text

CATEGORIES = {"process", "library", "thread", "file", "registry", "network", "api"}
EVIDENCE_OBJECTS = {"_EPROCESS", "_ETHREAD", "_LDR_DATA_TABLE_ENTRY", "_MMVAD"}


def flatten(rows):
    for row in rows:
        yield row
        yield from flatten(row.get("__children", []))


def events(image, *args):
    return [json.loads(line) for line in vol_text(image, "jsonl", "callstacks.events", *args).splitlines() if line]


@pytest.fixture(scope="module")
def registry_events(scenario_image):
    return events(scenario_image("remote_registry_run_key"))


def test_jsonl_is_one_ecs_event_per_line_the_same_as_the_event_column(scenario_image, registry_events):
    rows = vol_json(scenario_image("remote_registry_run_key"), "callstacks.events", "--ecs")
    assert [json.loads(r["Event"]) for r in rows] == registry_events
    assert [(r["PID"], r["Category"], r["Action"]) for r in rows] == [
        (e["process"]["pid"], e["event"]["category"][0], e["event"]["action"]) for e in registry_events]


def test_every_event_is_valid_ecs_with_its_evidence(registry_events):
    for event in registry_events:
        header = event["event"]
        assert header["kind"] == "event" and header["provider"] == "callstack_forensics"
        assert isinstance(header["category"], list) and set(header["category"]) <= CATEGORIES
        assert isinstance(header["action"], str) and header["action"]
        if "@timestamp" in event:
            assert dt.datetime.fromisoformat(event["@timestamp"].replace("Z", "+00:00")).tzinfo is not None
        process = event["process"]
        assert isinstance(process["pid"], int) and process["entity_id"].startswith(f"{process['pid']}@")
        evidence = event["evidence"]
        assert evidence["object"] in EVIDENCE_OBJECTS and evidence["detail"]
        assert evidence["address"] is None or int(evidence["address"], 16) > 0


def test_one_process_event_per_process_and_one_thread_event_per_thread(scenario_image, registry_events):
    image = scenario_image("remote_registry_run_key")
    processes = {r["PID"] for r in flatten(vol_json(image, "windows.pslist"))}
    threads = {(r["PID"], r["TID"]) for r in flatten(vol_json(image, "windows.threads"))}
    starts = [e["process"]["pid"] for e in registry_events if e["event"]["category"] == ["process"]
              and e["event"]["action"] == "start"]
    assert sorted(starts) == sorted(processes)
    per_thread = [(e["process"]["pid"], e["process"]["thread"]["id"]) for e in registry_events
                  if "thread" in e["process"]]
    assert sorted(per_thread) == sorted(threads)
    dlls = {(r["PID"], r["Base"]) for r in flatten(vol_json(image, "windows.dlllist"))}
    loads = {(e["process"]["pid"], int(e["dll"]["Ext"]["mapped_address"], 16)) for e in registry_events
             if e["event"]["category"] == ["library"] and "thread" not in e["process"]}
    assert dlls <= loads


def test_the_registry_write_reads_key_value_data_and_the_impersonated_user(registry_events):
    [event] = [e for e in registry_events if e["event"]["category"] == ["registry"]]
    assert event["process"]["pid"] == 1368 and event["process"]["thread"]["id"] == 1380
    assert event["registry"]["path"] == "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\SecurityUpdate"
    assert event["registry"]["data"]["strings"] == ["C:\\Users\\Public\\svc.exe"]
    assert event["user"]["id"] == "S-1-5-21-3623811015-3361044348-30300820-1104"
    assert event["process"]["thread"]["Ext"]["call_stack_summary"].startswith("ntdll.dll|kernelbase.dll|regsvc.dll|rpcrt4.dll")
    assert event["process"]["thread"]["Ext"]["syscall"]["name"] == "NtSetValueKey"
    [key] = [r for r in event["evidence"]["related"] if r["object"] == "Key"]
    assert key["name"].endswith("CurrentVersion\\Run") and int(key["address"], 16) > 0x7FFFFFFFFFFF, "a kernel address, as Volatility prints them"


def test_a_child_carries_its_creators_stack(scenario_image):
    found = events(scenario_image("scheduled_task_win10"), "--pid", "5644")
    assert {e["process"]["pid"] for e in found} == {5644}
    [start] = [e for e in found if e["event"]["category"] == ["process"]]
    parent = start["process"]["parent"]
    assert parent["name"] == "svchost.exe" and parent["thread"]["id"] == 1132
    symbols = [f["symbol_info"] for f in parent["thread"]["Ext"]["call_stack"]]
    assert symbols[0] == "c:\\windows\\system32\\ntdll.dll!NtCreateUserProcess+0x14"  # after `syscall`, as on Windows 10
    assert any("ubpm.dll!UbpmOpenTriggerConsumer" in s for s in symbols)


def test_yara_names_the_syscall_stubs_of_direct_syscall_shellcode(scenario_image):
    found = events(scenario_image("direct_syscall"), "--pid", "4120")
    creating = [e for e in found if e["event"]["category"] == ["process"] and "thread" in e["process"]]
    assert len(creating) == 4
    for event in creating:
        assert "Syscall_Stub_In_Unbacked_Memory" in {m["rule"] for m in event["yara"]["matches"]}
        assert event["process"]["thread"]["Ext"]["call_stack"][0]["yara"]


def test_no_yara_option(scenario_image):
    found = events(scenario_image("direct_syscall"), "--pid", "4120", "--no-yara")
    assert not any("yara" in e for e in found)


@pytest.mark.parametrize("renderer", ["quick", "pretty", "csv", "json"])
def test_every_renderer(scenario_image, renderer):
    out = vol_text(scenario_image("remote_registry_run_key"), renderer, "callstacks.events", "--pid", "1368", "--ecs")
    assert "NtSetValueKey" in out and "modification" in out
