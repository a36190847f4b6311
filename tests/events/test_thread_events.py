"""Per-thread events: the blocked system call decides the category; fields come from its arguments."""

from __future__ import annotations

import json
import struct

from callstack_forensics.events import SyscallTables
from callstack_forensics.memory import HandleInfo

from .helpers import (
    NTDLL, SYS32, Proc, api_frames, events_of, frame, only, stack, sys_frame, thread, view,
)

FILE = "\\Device\\HarddiskVolume3\\Users\\alice\\Documents\\Q3 report.docx"


def test_rename_gives_old_name_from_the_handle_and_new_name_from_the_rename_information():
    proc = Proc(path="C:\\Windows\\explorer.exe", image_device_path="\\Device\\HarddiskVolume3\\Windows\\explorer.exe")
    proc.handles[0x1A8] = HandleInfo("File", FILE, 0xFFFF9000DEAD0000)
    info = proc.rename_information("\\??\\C:\\Users\\alice\\Documents\\Q3 report.docx.knight")
    t = thread(proc, 8, [0x1A8, proc.put(bytes(16)), info, 0x100, 10])
    frames = [sys_frame("NtSetInformationFile"), *api_frames("kernelbase.dll!MoveFileExW", "Unbacked")]
    [event] = only(events_of(view(proc, [stack(proc, t, frames)])), "file")
    assert event["event"]["action"] == "rename"
    assert event["file"]["path"] == "C:\\Users\\alice\\Documents\\Q3 report.docx.knight"
    assert event["file"]["extension"] == "knight"
    assert event["file"]["Ext"]["original"]["name"] == "Q3 report.docx"
    assert event["file"]["Ext"]["original"]["path"] == "C:\\Users\\alice\\Documents\\Q3 report.docx"
    assert event["process"]["thread"]["Ext"]["call_stack_summary"] == "ntdll.dll|kernelbase.dll|Unbacked"
    handle = next(r for r in event["evidence"]["related"] if r.get("handle") == "0x1a8")
    assert handle["object"] == "File" and handle["address"] == "0xffff9000dead0000"
    assert event["evidence"]["object"] == "_ETHREAD" and event["evidence"]["tid"] == 8


def _write(proc: Proc, offset_pointer: int) -> dict:
    proc.handles[0x20] = HandleInfo("File", "\\Device\\HarddiskVolume3\\ProgramData\\upd.exe")
    buffer = proc.put(bytes.fromhex("4d5a90000300000004000000ffff0000b8000000"))
    t = thread(proc, 12, [0x20, 0, 0, 0, proc.put(bytes(16)), buffer, 20, offset_pointer, 0])
    frames = [sys_frame("NtWriteFile"), *api_frames("kernelbase.dll!WriteFile", "netsvcx.dll!ServiceMain")]
    [event] = only(events_of(view(proc, [stack(proc, t, frames)])), "file")
    return event


def test_write_at_offset_zero_gives_the_files_header_bytes():
    proc = Proc(image_device_path="\\Device\\HarddiskVolume3\\Windows\\explorer.exe")
    event = _write(proc, proc.put(struct.pack("<Q", 0)))
    assert event["file"]["Ext"]["header_bytes"] == "4d5a90000300000004000000ffff0000"
    assert event["file"]["path"] == "C:\\ProgramData\\upd.exe"


def test_write_elsewhere_says_nothing_about_the_header():
    proc = Proc()
    assert "header_bytes" not in _write(proc, proc.put(struct.pack("<Q", 0x200)))["file"].get("Ext", {})
    proc = Proc()
    assert "header_bytes" not in _write(proc, 0)["file"].get("Ext", {}), "current position: unknown offset"


def test_file_creation_takes_the_name_from_object_attributes_and_the_action_from_the_disposition():
    proc = Proc()
    attributes = proc.object_attributes("\\??\\C:\\Users\\alice\\AppData\\Local\\Temp\\invoice.exe")
    created = thread(proc, 8, [proc.put(bytes(8)), 0x40110080, attributes, proc.put(bytes(16)), 0, 0x80, 1, 2, 0x60])
    opened = thread(proc, 12, [proc.put(bytes(8)), 0x40110080, attributes, proc.put(bytes(16)), 0, 0x80, 1, 1, 0x60])
    frames = [sys_frame("NtCreateFile"), *api_frames("kernelbase.dll!CreateFileW", "ole32.dll!OleLoad")]
    events = only(events_of(view(proc, [stack(proc, created, frames), stack(proc, opened, frames)])), "file")
    assert [e["event"]["action"] for e in events] == ["creation", "open"]
    assert events[0]["file"]["extension"] == "exe"
    assert events[0]["file"]["name"] == "invoice.exe"


def test_registry_write_names_key_value_and_data_and_the_impersonated_user():
    proc = Proc(name="svchost.exe", path=SYS32 + "svchost.exe", user_sid="S-1-5-19")
    proc.handles[0x1A8] = HandleInfo("Key", "MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run")
    data = "C:\\Users\\Public\\svc.exe".encode("utf-16-le") + b"\0\0"
    t = thread(proc, 8, [0x1A8, proc.unicode("SecurityUpdate"), 0, 1, proc.put(data), len(data)],
               impersonation_sid="S-1-5-21-1-2-3-1104")
    frames = [sys_frame("NtSetValueKey"), *api_frames("kernelbase.dll!RegSetValueExW", "regsvc.dll!BaseRegSetValue",
                                                       "rpcrt4.dll!Invoke")]
    [event] = only(events_of(view(proc, [stack(proc, t, frames)])), "registry")
    assert event["event"]["action"] == "modification"
    registry = event["registry"]
    assert registry["path"] == "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\SecurityUpdate"
    assert registry["hive"] == "HKLM" and registry["value"] == "SecurityUpdate"
    assert registry["data"] == {"type": "REG_SZ", "strings": ["C:\\Users\\Public\\svc.exe"]}
    assert event["user"]["id"] == "S-1-5-21-1-2-3-1104"
    assert event["process"]["thread"]["Ext"]["impersonating"] is True


def test_dword_data_reads_as_decimal_text():
    proc = Proc(name="svchost.exe")
    proc.handles[0x10] = HandleInfo("Key", "\\REGISTRY\\MACHINE\\SYSTEM\\ControlSet001\\Services\\WinDefend")
    t = thread(proc, 8, [0x10, proc.unicode("Start"), 0, 4, proc.put(struct.pack("<I", 4)), 4])
    [event] = only(events_of(view(proc, [stack(proc, t, [sys_frame("NtSetValueKey")])])), "registry")
    assert event["registry"]["data"]["strings"] == ["4"]
    assert event["registry"]["key"] == "SYSTEM\\ControlSet001\\Services\\WinDefend"


def test_the_system_call_number_wins_over_the_stub_frame_0_stops_in():
    """AtomLdr-style: the syscall instruction of win32u's NtUserGetThreadState used as a gadget."""
    proc = Proc(name="notepad.exe")
    proc.handles[0x1AC] = HandleInfo("Section", "\\Device\\HarddiskVolume3\\Users\\alice\\atom.dll", image_section=True)
    t = thread(proc, 8, [0x1AC, 0xFFFFFFFFFFFFFFFF, proc.put(struct.pack("<Q", 0x7FFB90AB0000)), 0, 0, 0,
                         proc.put(struct.pack("<Q", 0x7000)), 1, 0x800000, 0x80], syscall_number=0x28)
    frames = [sys_frame("NtUserGetThreadState", "win32u.dll"), *api_frames("kernelbase.dll!CreateFileInternal",
                                                                         "Unbacked")]
    tables = SyscallTables({(SYS32.lower() + "ntdll.dll", NTDLL, None): {0x28: "NtMapViewOfSection"}})
    [event] = only(events_of(view(proc, [stack(proc, t, frames)]), tables=tables), "library", tid=8)
    syscall = event["process"]["thread"]["Ext"]["syscall"]
    assert syscall["name"] == "NtMapViewOfSection" and syscall["stub"] == "win32u.dll!NtUserGetThreadState"
    assert syscall["stub_mismatch"] is True
    assert event["dll"]["name"] == "atom.dll"
    assert event["dll"]["Ext"]["mapped_address"] == "0x7ffb90ab0000" and event["dll"]["Ext"]["mapped_size"] == 0x7000
    assert "another stub's syscall" in event["evidence"]["detail"]


def test_a_view_of_a_data_section_is_an_api_event_not_a_library_load():
    proc = Proc()
    proc.handles[0x30] = HandleInfo("Section", None, image_section=False)
    t = thread(proc, 8, [0x30, 0xFFFFFFFFFFFFFFFF, proc.put(bytes(8)), 0, 0, 0, proc.put(bytes(8)), 1, 0, 4])
    [event] = only(events_of(view(proc, [stack(proc, t, [sys_frame("NtMapViewOfSection")])])), "api")
    assert event["process"]["Ext"]["api"]["name"] == "MapViewOfFile"


def test_a_load_through_the_loader_is_a_library_event_even_while_opening_the_file():
    proc = Proc()
    t = thread(proc, 8, [proc.put(bytes(8)), 0x100021, proc.object_attributes("\\??\\C:\\Windows\\System32\\zipfld.dll"),
                         proc.put(bytes(16)), 5, 0x60])
    frames = [sys_frame("NtOpenFile"), *api_frames("ntdll.dll!LdrpMapDllNtFileName", "ntdll.dll!LdrLoadDll",
                                                    "kernelbase.dll!LoadLibraryExW")]
    [event] = only(events_of(view(proc, [stack(proc, t, frames)])), "library", tid=8)
    assert event["dll"]["path"] == "C:\\Windows\\System32\\zipfld.dll"
    assert event["event"]["action"] == "load"


def test_cross_process_protect_is_an_api_event_with_its_target():
    proc = Proc()
    proc.handles[0x40] = HandleInfo("Process", None, pid=4120)
    t = thread(proc, 8, [0x40, proc.put(struct.pack("<Q", 0x25000000)), proc.put(struct.pack("<Q", 0x2000)), 0x40,
                         proc.put(bytes(8))])
    [event] = only(events_of(view(proc, [stack(proc, t, [sys_frame("NtProtectVirtualMemory")])])), "api")
    api = event["process"]["Ext"]["api"]
    assert api["name"] == "VirtualProtectEx"  # Elastic's name for the call on another process
    assert api["parameters"] == {"address": 0x25000000, "size": 0x2000, "protection": "RWX"}
    assert api["behaviors"] == ["cross-process"] and event["Target"]["process"]["pid"] == 4120


def test_afd_connect_is_a_network_event():
    proc = Proc()
    proc.handles[0x50] = HandleInfo("File", "\\Device\\Afd\\Endpoint")
    t = thread(proc, 8, [0x50, 0, 0, 0, proc.put(bytes(16)), 0x12007, 0, 0, 0, 0])
    [event] = only(events_of(view(proc, [stack(proc, t, [sys_frame("NtDeviceIoControlFile")])])), "network")
    assert event["event"]["action"] == "connection_attempted"


def test_thread_state_events_say_what_the_thread_is_blocked_in():
    proc = Proc()
    waiting = thread(proc, 8, [], wait_reason="UserRequest")
    io = thread(proc, 12, [])  # NtDeviceIoControlFile with no handle: no evidence of a connection
    running = thread(proc, 16, [], state="Running")
    interrupted = thread(proc, 20, [], syscall_number=4)  # not after a syscall: the number is a leftover
    stacks = [
        stack(proc, waiting, [sys_frame("NtWaitForSingleObject")]),
        stack(proc, io, [sys_frame("NtDeviceIoControlFile")]),
        stack(proc, running, [frame(0, "c:\\windows\\explorer.exe+0x1234", ("explorer.exe", 0x7FF600000000),
                                    leading="cc" * 64)]),
        stack(proc, interrupted, [frame(0, "c:\\windows\\explorer.exe+0x99", ("explorer.exe", 0x7FF600000000),
                                        leading="cc" * 64)]),
    ]
    events = only(events_of(view(proc, stacks)), "thread")
    assert [e["event"]["action"] for e in events] == ["wait", "io", "running", "wait"]
    assert "syscall" not in events[3]["process"]["thread"]["Ext"]


def test_unreadable_arguments_leave_the_fields_out_and_never_raise():
    proc = Proc()
    t = thread(proc, 8, [0, 0, 0x7777000, 0, 0, 0, 0, 2, 0])  # OBJECT_ATTRIBUTES in memory that is not present
    [event] = only(events_of(view(proc, [stack(proc, t, [sys_frame("NtCreateFile")])])), "thread")
    assert event["event"]["action"] == "syscall"
    assert "file" not in event


class Hostile(Proc):
    def handle(self, value):
        raise RuntimeError("smeared handle table")

    def read(self, address, size):
        if address >= 0x7000_0000:
            raise RuntimeError("hostile layer")
        return super().read(address, size)


def test_a_failing_source_becomes_a_note_not_an_exception():
    proc = Hostile()
    t = thread(proc, 8, [0x1A8, 0x7000_0000, 0x7000_0000, 0x100, 10])
    [event] = [e for e in events_of(view(proc, [stack(proc, t, [sys_frame("NtSetInformationFile")])]))
               if e["process"].get("thread")]
    assert event["event"]["category"] == ["thread"]
    assert "not decoded" in event["process"]["thread"]["Ext"]["note"]


def test_every_thread_event_carries_its_stack_start_address_and_state():
    proc = Proc()
    proc.map(0x25000000, b"\xcc" * 0x100, "RWX")
    t = thread(proc, 8, [], win32_start_address=0x25000040, wait_reason="DelayExecution")
    [event] = only(events_of(view(proc, [stack(proc, t, [sys_frame("NtDelayExecution"), *api_frames("Unbacked")])])),
                   "thread")
    ext = event["process"]["thread"]["Ext"]
    assert ext["start_address"] == "0x25000040" and ext["start_address_module"] == "Unbacked"
    assert ext["state"] == "Waiting" and ext["wait_reason"] == "DelayExecution"
    assert ext["call_stack_contains_unbacked"] is True
    assert ext["call_stack"][0]["symbol_info"].endswith("ntdll.dll!NtDelayExecution+0x14")
    assert event["@timestamp"] == "2024-05-14T10:22:31.000Z"


def test_every_event_of_a_process_carries_a_process_object_of_its_own():
    """The process object is worked out once per process and copied into each event: a later writer
    of one event (a rule's enrichment, the report) must not change the others, at any depth."""
    proc = Proc(path="C:\\Windows\\explorer.exe", command_line="explorer.exe /factory")
    frames = [sys_frame("NtWaitForSingleObject"), *api_frames("kernelbase.dll!WaitForSingleObjectEx", "Unbacked")]
    stacks = [stack(proc, thread(proc, tid, [0, 0, 0]), frames) for tid in (8, 12)]
    events = [e for e in events_of(view(proc, stacks)) if "thread" in e.get("process", {})]
    assert len(events) == 2
    first, second = events[0]["process"], events[1]["process"]
    before = json.dumps(second, sort_keys=True)
    containers = _containers(first)
    assert any(type(c) is list for c in containers) and len(containers) > 3
    for container in containers:
        if type(container) is dict:
            container["written"] = "by the first event's reader"
        else:
            container.append("written by the first event's reader")
    assert json.dumps(second, sort_keys=True) == before


def _containers(value) -> list:
    if type(value) is dict:
        return [value, *(c for v in value.values() for c in _containers(v))]
    if type(value) is list:
        return [value, *(c for v in value for c in _containers(v))]
    return []
