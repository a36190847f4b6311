"""Process and library events: identity, lineage, creating threads, fork clones."""

from __future__ import annotations

import datetime as dt

from callstack_forensics.memory import Module, RegionKind
from callstack_forensics.rules import default_rules_dir, load_rules

from .helpers import (
    CAPTURE, EXE, SYS32, Proc, api_frames, events_of, frame, only, stack, sys_frame, thread, view,
)

CMD = "C:\\Windows\\System32\\cmd.exe"


def _creator(proc: Proc, tid: int, image: str, command_line: str):
    params = proc.process_parameters("\\??\\" + image, command_line)
    attributes = proc.attribute_list("\\??\\" + image)
    args = [proc.put(bytes(8)), proc.put(bytes(8)), 0x2000000, 0x2000000, 0, 0, 0x200, 1, params,
            proc.put(bytes(0x58)), attributes]
    frames = [sys_frame("NtCreateUserProcess"), *api_frames("kernelbase.dll!CreateProcessInternalW",
                                                             "kernel32.dll!CreateProcessW", "zipfld.dll!InvokeCommand")]
    return stack(proc, thread(proc, tid, args), frames)


def _child(pid: int, ppid: int, command_line: str, minutes: int = 1, **info) -> Proc:
    return Proc(pid, "cmd.exe", path=CMD, ppid=ppid, command_line=command_line,
                create_time=CAPTURE - dt.timedelta(minutes=minutes), **info)


def test_the_child_gets_the_stack_of_the_thread_still_creating_it():
    parent = Proc(3140, "explorer.exe", command_line="C:\\Windows\\Explorer.EXE",
                  create_time=CAPTURE - dt.timedelta(hours=2))
    creating = _creator(parent, 8, CMD, "cmd.exe /c whoami")
    other = _child(5300, 3140, "cmd.exe /c dir", minutes=5)
    child = _child(5200, 3140, "cmd.exe /c whoami")
    events = events_of(view(parent, [creating]), view(child), view(other))
    [start] = [e for e in only(events, "process", pid=5200) if e["event"]["action"] == "start"]
    thread = start["process"]["parent"]["thread"]
    assert thread["id"] == 8
    assert thread["Ext"]["call_stack_summary"] == "ntdll.dll|kernelbase.dll|kernel32.dll|zipfld.dll"
    assert start["process"]["parent"]["entity_id"] == "3140@" + "2024-05-14T08:22:31.000Z"
    assert start["process"]["parent"]["name"] == "explorer.exe"
    [related] = start["evidence"]["related"]
    assert related["tid"] == 8 and "command line" in related["detail"]
    [unlinked] = [e for e in only(events, "process", pid=5300) if e["event"]["action"] == "start"]
    assert "thread" not in unlinked["process"]["parent"], "arguments name another command line"
    [creation] = only(events, "process", pid=3140, tid=8)
    assert creation["event"]["action"] == "creation"
    assert creation["Target"]["process"] == {"executable": CMD, "name": "cmd.exe",
                                            "command_line": "cmd.exe /c whoami", "parent": {"pid": 3140}}


def test_a_reused_parent_pid_names_no_parent():
    late_parent = Proc(3140, "explorer.exe", create_time=CAPTURE - dt.timedelta(minutes=1))
    child = _child(5200, 3140, "cmd.exe", minutes=30)
    [start] = [e for e in events_of(view(late_parent), view(child)) if e["process"]["pid"] == 5200
               and e["event"]["category"] == ["process"]]
    assert start["process"]["parent"] == {"pid": 3140}


def _fork_source(proc: Proc):
    frames = [sys_frame("NtCreateUserProcess"), *api_frames("ntdll.dll!RtlCloneUserProcess", "ntdll.dll!RtlpStartup",
                                                             "kernel32.dll!BaseThreadInitThunk")]
    return stack(proc, thread(proc, 8, [proc.put(bytes(8)), proc.put(bytes(8)), 0, 0, 0, 0, 0, 0, 0, 0, 0]), frames)


def test_a_fork_clone_is_linked_to_the_thread_forking_it_and_the_rules_see_it():
    source = Proc(3140, "explorer.exe", clone_root=True, create_time=CAPTURE - dt.timedelta(hours=2))
    clone = Proc(6092, "explorer.exe", ppid=3140, clone_root=True, create_time=CAPTURE - dt.timedelta(seconds=30))
    child = _child(6120, 6092, "cmd.exe /c whoami", minutes=0)
    events = events_of(view(source, [_fork_source(source)]), view(clone), view(child))
    starts = {e["process"]["pid"]: e for e in events if e["event"]["action"] == "start"
              and e["event"]["category"] == ["process"]}
    assert starts[6092]["process"]["Ext"]["fork_clone"] is True
    assert starts[3140]["process"]["Ext"]["fork_clone"] is False, "the source of a fork is not a clone"
    assert starts[3140]["process"]["Ext"]["clone_root"] is True
    symbols = [f["symbol_info"] for f in starts[6092]["process"]["parent"]["thread"]["Ext"]["call_stack"]]
    assert any("RtlCloneUserProcess" in s for s in symbols)
    fired = {m.rule.name for m in load_rules(default_rules_dir()).run(events)}
    assert {"Fork Clone Not Created by Windows Error Reporting",
            "Process Started by a Forked (Reflected) Process"} <= fired


def test_a_forking_thread_is_not_linked_to_a_child_that_is_no_clone():
    source = Proc(2124, "svchost.exe", clone_root=False)
    werfault = Proc(5480, "WerFault.exe", path=SYS32 + "WerFault.exe", ppid=2124, clone_root=False,
                    create_time=CAPTURE - dt.timedelta(seconds=2))
    events = events_of(view(source, [_fork_source(source)]), view(werfault))
    [start] = [e for e in events if e["process"]["pid"] == 5480 and e["event"]["category"] == ["process"]]
    assert "thread" not in start["process"]["parent"]
    assert start["process"]["Ext"]["fork_clone"] is False


def test_a_clone_whose_creator_moved_on_keeps_the_frames_it_inherited():
    clone = Proc(6092, "explorer.exe", ppid=3140, clone_root=True)
    frames = [sys_frame("NtWaitForSingleObject"), *api_frames("Unbacked", "ntdll.dll!RtlCreateProcessReflection",
                                                               "kernel32.dll!BaseThreadInitThunk",
                                                               "ntdll.dll!RtlUserThreadStart")]
    events = events_of(view(clone, [stack(clone, thread(clone, 8, []), frames)]))
    [start] = only(events, "process", pid=6092)
    inherited = start["process"]["parent"]["thread"]
    assert "id" not in inherited, "the creating thread is not known, only its frames"
    assert inherited["Ext"]["call_stack_summary"] == "ntdll.dll|kernel32.dll|ntdll.dll"
    assert start["process"]["Ext"]["fork_clone"] is True


def test_clone_root_alone_leaves_fork_clone_undetermined():
    lone = Proc(6092, "explorer.exe", ppid=3100, clone_root=True)
    [start] = only(events_of(view(lone)), "process")
    assert "fork_clone" not in start["process"]["Ext"]
    assert start["process"]["Ext"]["clone_root"] is True


def test_entity_ids_are_stable_and_distinct_for_a_reused_pid():
    a = Proc(500, "a.exe", create_time=CAPTURE - dt.timedelta(hours=1))
    b = Proc(500, "a.exe", create_time=CAPTURE - dt.timedelta(minutes=1))
    ids = [only(events_of(view(p)), "process")[0]["process"]["entity_id"] for p in (a, b, a)]
    assert ids[0] == ids[2] != ids[1]


def test_one_library_event_per_module_with_what_the_image_records():
    proc = Proc(signature_level=12)
    proc.add_module(Module(0x7FFB90AB0000, 0x7000, "\\Windows\\System32\\evilmon.dll", linked=False))
    proc.add_module(Module(0x7FFB97000000, 0x7000, SYS32 + "ws2_32.dll",
                           load_time=CAPTURE - dt.timedelta(seconds=3), signing_level=8))
    proc.map(0x7FFB90AB0000, b"MZ", "R-X", RegionKind.IMAGE, "\\Windows\\System32\\evilmon.dll")
    libraries = {e["dll"]["name"]: e for e in only(events_of(view(proc)), "library")}
    assert {"ntdll.dll", "kernel32.dll", "evilmon.dll", "ws2_32.dll"} <= set(libraries)
    assert libraries["evilmon.dll"]["dll"]["Ext"]["unlinked"] is True
    assert libraries["evilmon.dll"]["evidence"]["object"] == "_MMVAD"
    assert "code_signature" not in libraries["evilmon.dll"]["dll"]
    ws2 = libraries["ws2_32.dll"]
    assert ws2["@timestamp"] == "2024-05-14T10:22:28.000Z"
    assert ws2["dll"]["code_signature"]["status"] == "trusted"
    assert ws2["evidence"] == {"object": "_LDR_DATA_TABLE_ENTRY", "address": "0x7ffb97000000", "pid": 100,
                               "detail": "module in the PEB's loader list (address: the module's base)"}
    [start] = only(events_of(view(proc)), "process")
    assert start["process"]["code_signature"]["Ext"]["signing_level"] == "Windows"


def test_the_rename_rule_fires_when_the_image_records_a_trusted_signature():
    """The signature comes from evidence (SignatureLevel); without it the seed's rename rule cannot fire."""
    from callstack_forensics.memory import HandleInfo

    def run(level: int | None) -> set[str]:
        proc = Proc(signature_level=level, image_device_path="\\Device\\HarddiskVolume3\\Windows\\explorer.exe")
        proc.handles[0x1A8] = HandleInfo("File", "\\Device\\HarddiskVolume3\\Users\\a\\Q3.docx")
        t = thread(proc, 8, [0x1A8, proc.put(bytes(16)), proc.rename_information("\\??\\C:\\Users\\a\\Q3.docx.knight"),
                             0x100, 10])
        frames = [sys_frame("NtSetInformationFile"), *api_frames("kernelbase.dll!MoveFileExW", "Unbacked")]
        return {m.rule.name for m in load_rules(default_rules_dir()).run(events_of(view(proc, [stack(proc, t, frames)])))}

    assert "Suspicious File Rename from Unbacked Memory" in run(12)
    assert "Suspicious File Rename from Unbacked Memory" not in run(None)


def test_emit_limits_the_events_but_not_the_links():
    parent = Proc(3140, "explorer.exe", create_time=CAPTURE - dt.timedelta(hours=2))
    child = _child(5200, 3140, "cmd.exe /c whoami")
    events = events_of(view(parent, [_creator(parent, 8, CMD, "cmd.exe /c whoami")]), view(child), emit={5200})
    assert {e["process"]["pid"] for e in events} == {5200}
    assert events[0]["process"]["parent"]["thread"]["id"] == 8


def test_event_order_and_required_fields():
    proc = Proc()
    t = thread(proc, 8, [])
    events = events_of(view(proc, [stack(proc, t, [sys_frame("NtWaitForSingleObject"),
                                                   frame(1, "c:\\windows\\explorer.exe!wWinMain+0x1b",
                                                         ("explorer.exe", EXE))])]))
    assert [e["event"]["category"][0] for e in events] == ["process"] + ["library"] * 4 + ["thread"]
    for event in events:
        assert event["event"]["kind"] == "event" and event["event"]["provider"] == "callstack_forensics"
        assert event["process"]["entity_id"] and event["evidence"]["object"]


class BrokenModules(Proc):
    def modules(self):
        raise RuntimeError("loader list smeared")


def test_a_process_the_builder_cannot_read_still_gets_its_event_with_a_note_and_others_are_untouched():
    broken = BrokenModules(700, "broken.exe")
    fine = Proc(800, "fine.exe")
    events = events_of(view(broken, [stack(broken, thread(broken, 8, []), [sys_frame("NtWaitForSingleObject")])]),
                       view(fine))
    [only_event] = [e for e in events if e["process"]["pid"] == 700]
    assert only_event["event"]["action"] == "start"
    assert "events not built (RuntimeError: loader list smeared)" in only_event["evidence"]["detail"]
    assert len([e for e in events if e["process"]["pid"] == 800]) == 5


def test_the_pipeline_walks_and_notes_what_it_cannot_walk():
    from callstack_forensics.events.pipeline import EventPipeline

    class NoThreads(Proc):
        def threads(self):
            raise RuntimeError("thread list unreadable")

    pipeline = EventPipeline()
    proc = Proc(900, "ok.exe")
    proc.add_thread(thread(proc, 8, []))
    walked = pipeline.view(proc)
    assert [s.tid for s in walked.stacks] == [8] and walked.stacks[0].frames[0].symbol_info.startswith("c:\\windows")
    broken = pipeline.view(NoThreads(901, "no.exe"))
    assert broken.stacks == [] and "threads not listed" in broken.note
    [start] = [e for e in pipeline.events([broken]) if e["event"]["category"] == ["process"]]
    assert "threads not listed" in start["evidence"]["detail"]


def test_the_process_signature_falls_back_to_its_images_loader_entry():
    proc = Proc(path="C:\\Windows\\explorer.exe")
    proc.add_module(Module(EXE, 0x10000, "C:\\Windows\\Explorer.EXE", signing_level=8))
    [start] = only(events_of(view(proc)), "process")
    assert start["process"]["code_signature"] == {"exists": True, "trusted": True, "status": "trusted",
                                                  "Ext": {"signing_level": "Microsoft"}}
    unsigned = Proc(path="C:\\Users\\a\\x.exe")
    unsigned.add_module(Module(EXE, 0x10000, "C:\\Users\\a\\x.exe", signing_level=1))
    [start] = only(events_of(view(unsigned)), "process")
    assert start["process"]["code_signature"]["exists"] is False
