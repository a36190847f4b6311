"""The report's view model: the process tree survives what an image can hold (orphans, PID
reuse, parent cycles), and each finding shows the right threads with its own frames highlighted."""

from __future__ import annotations

from callstack_forensics.analysis import MatchedFrame
from callstack_forensics.report.view import build_view, hex_lines, process_tree

from .builders import analysis, finding, frame, frames, process, stack


def tree(procs) -> list[tuple[int, int]]:
    return [(procs[n.index].info.pid, n.depth) for n in process_tree(procs)]


def test_children_follow_their_parent_and_orphans_are_roots():
    procs = [process(4, 0, "System"), process(3140, 3100, "explorer.exe"), process(384, 4, "smss.exe"),
             process(6120, 3140, "cmd.exe"), process(6200, 6120, "conhost.exe")]
    assert tree(procs) == [(4, 0), (384, 1), (3140, 0), (6120, 1), (6200, 2)]
    nodes = {procs[n.index].info.pid: n for n in process_tree(procs)}
    assert nodes[3140].orphan and not nodes[4].orphan and nodes[3140].children == 1


def test_parent_cycles_and_self_parents_list_every_process_once():
    procs = [process(100, 200), process(200, 100), process(300, 300), process(400, 100)]
    listed = tree(procs)
    assert sorted(pid for pid, _ in listed) == [100, 200, 300, 400]
    assert listed[0] == (300, 0)  # its own parent: a root
    assert listed[1:] == [(100, 0), (200, 1), (400, 1)]  # the cycle is cut at its first process


def test_reused_pid_does_not_place_a_child_twice():
    procs = [process(500, 4, "a.exe"), process(500, 4, "b.exe"), process(600, 500, "child.exe")]
    listed = tree(procs)
    assert len(listed) == 3 and listed.count((600, 1)) == 1


def test_a_chain_of_thousands_does_not_recurse():
    procs = [process(4 * (i + 1), 4 * i) for i in range(5000)]
    listed = tree(procs)
    assert len(listed) == 5000 and listed[-1] == (20000, 4999)


def test_finding_shows_its_thread_and_the_parents_creating_thread_highlighted_separately():
    parent_stack = stack(3140, 3200, *frames("ntdll.dll!NtCreateUserProcess+0xa", "ntdll.dll!RtlCloneUserProcess+0x83",
                                             "kernel32.dll!BaseThreadInitThunk+0xc", "ntdll.dll!RtlUserThreadStart+0x1e"))
    child_stack = stack(6092, 6096, frame(0, "ntdll.dll!NtDelayExecution+0x14"), frame(1, "Unbacked", "RWX"))
    procs = [process(3140, 3100, "explorer.exe", [parent_stack]), process(6092, 3140, "explorer.exe", [child_stack])]
    reflection = finding("reflection", 6092, None, [
        MatchedFrame("process.parent.thread.Ext.call_stack", 1, 3140, 3200, "ntdll.dll!RtlCloneUserProcess")])
    rwx = finding("rwx", 6092, 6096, [MatchedFrame("process.thread.Ext.call_stack", 1, 6092, 6096, "Unbacked")])
    view = build_view(analysis(procs, [reflection, rwx]))

    first = view.findings[0].stacks
    assert [(s.label, s.pid, s.tid) for s in first] == [("creating thread, in the parent", 3140, 3200)]
    assert [f.matched for f in first[0].stack.frames] == [False, True, False, False]
    second = view.findings[1].stacks
    assert [(s.label, s.pid, s.tid) for s in second] == [("thread", 6092, 6096)]
    assert [f.matched for f in second[0].stack.frames] == [False, True]
    assert "unbacked" in second[0].stack.frames[1].css.split() and "rwx" in second[0].stack.frames[1].css.split()
    # The tree highlights every rule's frames, and links findings to the thread's anchor.
    tree_stacks = {(s.pid, s.tid): s for p in view.processes for s in p.stacks}
    assert [f.matched for f in tree_stacks[(3140, 3200)].frames] == [False, True, False, False]
    assert first[0].stack.anchor == tree_stacks[(3140, 3200)].anchor
    assert [p.findings for p in view.processes] == [0, 2] and view.processes[1].suspicious


def test_finding_without_frames_falls_back_to_the_creating_thread_its_event_names():
    parent_stack = stack(3140, 3200, *frames("ntdll.dll!NtCreateUserProcess+0xa"))
    event = {"event": {"category": ["process"], "action": "start"}, "process": {
        "pid": 6120, "name": "cmd.exe", "parent": {"pid": 3140, "thread": {"id": 3200}}}}
    started = finding("started by a clone", 6120, None, events=[event])
    view = build_view(analysis([process(3140, 3100, "explorer.exe", [parent_stack]), process(6120, 3140, "cmd.exe")],
                               [started]))
    shown = view.findings[0].stacks
    assert [(s.label, s.pid, s.tid, s.stack is not None) for s in shown] == [
        ("creating thread, in the parent", 3140, 3200, True)]
    assert view.findings[0].events[0].action == "start" and view.findings[0].events[0].category == "process"


def test_a_thread_not_in_the_analysis_says_why():
    unwalked = process(700, 4, "lsass.exe")
    unwalked.walked, unwalked.note = False, "PEB not readable"
    missing = finding("x", 700, 704, [MatchedFrame("process.thread.Ext.call_stack", 0, 700, 704, "?")])
    gone = finding("y", 900, 904)
    view = build_view(analysis([unwalked], [missing, gone]))
    assert view.findings[0].stacks[0].missing == "PID 700's threads were not walked (PEB not readable)"
    assert view.findings[1].stacks[0].missing == "PID 900 is not in this analysis"


def test_duplicate_thread_ids_get_distinct_anchors():
    procs = [process(500, 4, "a.exe", [stack(500, 504, *frames("ntdll.dll!NtWaitForSingleObject+0xa"))]),
             process(500, 4, "b.exe", [stack(500, 504, *frames("ntdll.dll!NtDelayExecution+0x14"))])]
    anchors = [s.anchor for p in build_view(analysis(procs)).processes for s in p.stacks]
    assert len(set(anchors)) == 2


def test_hex_lines():
    line = " ".join(["4c", "8b", "d1", "b8"] * 4)
    assert hex_lines("4c8bd1b8" * 8) == (line, line)  # 32 bytes: two lines of 16
    assert hex_lines("4c8bd1b8" * 5) == (line, "4c 8b d1 b8")
    assert hex_lines("") == ()
    assert hex_lines("zz") == ("zz",) and hex_lines("abc") == ("abc",)  # not hex: shown as it is
