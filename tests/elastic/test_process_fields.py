"""process.args, working_directory, the token's integrity level, event.outcome: present where the
image holds their source, absent (never empty or false) where it does not."""

from __future__ import annotations

import dataclasses

from callstack_forensics.events import Snapshot, build_events
from callstack_forensics.events.model import ProcessView
from callstack_forensics.memory import ProcessInfo

from .conftest import process_event


def test_args_come_from_the_peb_command_line_split_as_windows_does(benign_events):
    svchost = next(e for e in benign_events if e["event"]["action"] == "start"
                   and e["process"].get("command_line", "").endswith("-k netsvcs -p -s Schedule"))
    process = svchost["process"]
    assert process["args"] == ["C:\\Windows\\system32\\svchost.exe", "-k", "netsvcs", "-p", "-s", "Schedule"]
    assert process["args_count"] == 6
    assert process["parent"]["args"] == process["parent"]["command_line"].split(" ")
    assert process["parent"]["args_count"] == len(process["parent"]["args"])


def test_working_directory_and_integrity_level_from_the_image(benign_events):
    services = process_event(benign_events, "services.exe")
    assert services["process"]["working_directory"].lower() == "c:\\windows\\system32\\"
    assert services["process"]["Ext"]["token"] == {"integrity_level_name": "system", "integrity_level": 16384}
    explorer = process_event(benign_events, "explorer.exe")
    assert explorer["process"]["Ext"]["token"]["integrity_level_name"] == "medium"
    assert explorer["event"]["outcome"] == "success"


def test_thread_events_carry_no_outcome(benign_events):
    threads = [e for e in benign_events if e["event"]["category"] == ["thread"]]
    assert threads and all("outcome" not in e["event"] for e in threads)


def test_system_process_without_peb_has_no_args_or_directory(benign_events):
    system = next(e for e in benign_events if e["event"]["action"] == "start" and e["process"]["pid"] == 4)
    assert not {"args", "args_count", "working_directory", "command_line"} & set(system["process"])


def test_fields_are_absent_when_the_source_does_not_hold_them():
    info = ProcessInfo(pid=100, name="a.exe", path="C:\\a.exe")
    (event,) = build_events(Snapshot([ProcessView(info)]))
    process = event["process"]
    assert not {"args", "args_count", "working_directory"} & set(process)
    assert "token" not in process["Ext"]
    unknown = dataclasses.replace(info, integrity_sid="S-1-16-1234", command_line="")
    (event,) = build_events(Snapshot([ProcessView(unknown)]))
    assert "token" not in event["process"]["Ext"] and "args" not in event["process"]


def test_uptime_from_creation_to_capture(benign_events):
    import datetime as dt

    services = process_event(benign_events, "services.exe")
    started = dt.datetime.fromisoformat(services["process"]["start"].replace("Z", "+00:00"))
    captured = dt.datetime(2024, 5, 14, 10, 22, 31, tzinfo=dt.timezone.utc)  # the scenario's [system] time
    assert services["process"]["uptime"] == int((captured - started).total_seconds())
    info = ProcessInfo(pid=100, name="a.exe")  # no create time: no uptime
    (event,) = build_events(Snapshot([ProcessView(info)], captured))
    assert "uptime" not in event["process"]
