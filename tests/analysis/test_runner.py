"""The analysis runner on hand-made sources: nothing stops the run, selection keeps lineage,
findings come sorted by severity with the rule's text, and every unread thing is a note."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from pathlib import Path

from callstack_forensics.analysis import AnalysisOptions, OpenedProcess, SourceInfo, analyze
from callstack_forensics.memory import ProcessInfo
from callstack_forensics.rules import load_rules

from ..engine.synth import SynthProcess

WHEN = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


@dataclass
class ListSource:
    """A Source over prepared processes; ``fail_time`` makes the capture time unreadable."""

    items: list[OpenedProcess]
    fail_time: bool = False
    info: SourceInfo = field(default_factory=lambda: SourceInfo("test.raw", 0, "memory image"))

    def processes(self):
        yield from self.items

    def observed_at(self):
        if self.fail_time:
            raise ValueError("KUSER_SHARED_DATA smeared")
        return WHEN


def process(pid: int, ppid: int | None, name: str) -> OpenedProcess:
    memory = SynthProcess(pid, name)
    memory.process = replace(memory.process, ppid=ppid)
    return OpenedProcess(memory.process, memory)


class NoThreads(SynthProcess):
    def threads(self):
        raise RuntimeError("thread list head is not a list")


def rules(tmp_path: Path, *specs: tuple[str, str, str]) -> Path:
    for number, (name, severity, query) in enumerate(specs):
        (tmp_path / f"r{number}.toml").write_text(
            f'[rule]\nid = "r{number}"\nname = "{name}"\nseverity = "{severity}"\n'
            f'description = "about {name}"\nquery = \'\'\'\n{query}\n\'\'\'\n')
    return tmp_path


def test_an_unreadable_process_is_listed_with_its_reason_and_the_run_goes_on():
    unread = OpenedProcess(ProcessInfo(666, "ghost.exe", ppid=4), None, "process layer not available (DTB smeared)")
    broken = NoThreads(700, "broken.exe")
    result = analyze(ListSource([process(4, 0, "System"), unread, OpenedProcess(broken.process, broken)]),
                     AnalysisOptions())
    assert [p.info.pid for p in result.processes] == [4, 666, 700]
    ghost = result.process(666)
    assert not ghost.walked and "DTB smeared" in ghost.note
    assert any("ghost.exe" in n and "DTB smeared" in n for n in result.notes)
    assert any("broken.exe" in n and "threads not listed" in n for n in result.notes)
    assert {e["process"]["pid"] for e in result.events if e["event"]["category"] == ["process"]} >= {4, 666, 700}


def test_pid_selection_walks_the_ancestors_and_survives_a_parent_cycle():
    items = [process(10, 20, "a.exe"), process(20, 10, "b.exe"), process(30, 10, "child.exe"), process(40, 4, "other.exe")]
    result = analyze(ListSource(items), AnalysisOptions(pids={30}))
    assert {p.info.pid for p in result.processes if p.walked} == {10, 20, 30}
    assert not result.process(40).walked


def test_events_of_ancestors_are_emitted_only_when_asked():
    items = [process(10, 4, "parent.exe"), process(30, 10, "child.exe")]
    with_lineage = analyze(ListSource(items), AnalysisOptions(pids={30}))
    alone = analyze(ListSource(items), AnalysisOptions(pids={30}, emit_ancestors=False))
    assert {e["process"]["pid"] for e in with_lineage.events} == {10, 30}
    assert {e["process"]["pid"] for e in alone.events} == {30}


def test_unknown_pid_and_unreadable_capture_time_are_notes():
    result = analyze(ListSource([process(10, 4, "a.exe")], fail_time=True), AnalysisOptions(pids={99}))
    assert any("no process with PID 99" in n for n in result.notes)
    assert any("capture time not read" in n and "smeared" in n for n in result.notes)
    assert result.observed_at is None


def test_findings_are_sorted_by_severity_and_carry_the_rule_text(tmp_path):
    folder = rules(tmp_path, ("Low one", "low", 'process where process.name : "a.exe"'),
                   ("Critical one", "critical", 'process where process.name : "b.exe"'),
                   ("High one", "high", 'process where process.name : ("a.exe", "b.exe")'))
    items = [process(10, 4, "a.exe"), process(20, 4, "b.exe")]
    result = analyze(ListSource(items), AnalysisOptions(ruleset=load_rules([folder]), rule_dirs=[folder]))
    assert [(f.severity, f.pid) for f in result.findings] == [("critical", 20), ("high", 10), ("high", 20), ("low", 10)]
    first = result.findings[0]
    assert first.rule_name == "Critical one" and first.description == "about Critical one"
    assert 'process.name : "b.exe"' in first.query and first.process == "b.exe"
    assert [r.name for r in result.rules] == ["Low one", "Critical one", "High one"]
    assert result.to_json()["findings"][0]["rule"]["severity"] == "critical"


def test_pid_selection_keeps_only_findings_about_the_selection(tmp_path):
    folder = rules(tmp_path, ("Any", "medium", "process where true"))
    items = [process(10, 4, "a.exe"), process(20, 10, "b.exe")]
    result = analyze(ListSource(items), AnalysisOptions(ruleset=load_rules([folder]), pids={20}))
    assert {f.pid for f in result.findings} == {20}


def test_thread_notes_are_grouped_by_reason():
    memory = SynthProcess(4, "System")
    from callstack_forensics.memory import ThreadInfo

    for tid in range(8, 8 + 4 * 12, 4):
        memory.add_thread(ThreadInfo(tid=tid, note="system thread: no TEB, no user-mode context"))
    result = analyze(ListSource([OpenedProcess(memory.process, memory)]), AnalysisOptions())
    grouped = [n for n in result.notes if "system thread" in n]
    assert len(grouped) == 1 and "12 threads" in grouped[0] and "and 4 more" in grouped[0]


def test_the_collector_is_paced_for_the_analysis_and_put_back_after_it():
    import gc

    from callstack_forensics.analysis.collector import ANALYSIS_THRESHOLDS

    seen = []
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        analyze(ListSource([process(4, 0, "System")]), AnalysisOptions(on_listed=lambda _: seen.append(gc.get_threshold())))
        assert seen == [ANALYSIS_THRESHOLDS] and gc.get_threshold() == (700, 10, 10)
        gc.set_threshold(100_000, 10, 1000)  # a caller that already collects less often keeps its pace
        analyze(ListSource([process(4, 0, "System")]), AnalysisOptions(on_listed=lambda _: seen.append(gc.get_threshold())))
        assert seen[-1] == (100_000, 20, 1000) and gc.get_threshold() == (100_000, 10, 1000)
    finally:
        gc.set_threshold(*before)
