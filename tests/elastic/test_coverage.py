"""The rule-coverage counter on rule files written in Elastic's style and on events we make."""

from __future__ import annotations

from callstack_forensics.eql import parse_query
from callstack_forensics.rules import load_rules
from callstack_forensics.rules.coverage import CoverageRun, Held, coverage, for_os, render, rule_needs

from .corpus import StyledRule, write_corpus

PROCESS = {"event": {"category": ["process"], "action": "start"},
           "process": {"name": "cmd.exe", "entity_id": "4@x", "args": ["cmd.exe", "/c"], "parent": {"name": "explorer.exe"},
                       "thread": {"Ext": {"call_stack": [{"symbol_info": "ntdll.dll!NtWait+0x14"}, {"symbol_info": None}]}},
                       "code_signature": {"exists": None}, "pe": {}},
           "dll.name": "flat.dll"}

RULES = [
    StyledRule("Reads Held Fields", 'process where event.action == "start" and process.args : "/c" and '
               'process.parent.name : "explorer.exe"'),
    StyledRule("Reads A Frame", 'process where _arraysearch(process.thread.Ext.call_stack, $entry, '
               '$entry.symbol_info : "*NtWait*")'),
    StyledRule("Needs Signature", 'process where process.code_signature.trusted == false and process.name : "x"'),
    StyledRule("Needs Two", 'process where process.pe.original_file_name : "x" and process.hash.sha256 : "y"'),
    StyledRule("Dns Class", 'dns where dns.question.name : "x"'),
    StyledRule("Any Class", 'any where dll.name : "flat.dll"'),
    StyledRule("Sequence Until", 'sequence by process.entity_id [process where process.name : "a"] '
               '[process where process.name : "b"] until [registry where registry.path : "x"]'),
    StyledRule("Linux Only", 'process where process.name : "bash"', folder="linux", os_list=("linux",)),
]


def test_held_fields_walk_arrays_of_objects_and_skip_nulls():
    held = Held.of([PROCESS])
    assert "process.thread.Ext.call_stack.symbol_info" in held.fields
    assert "process.thread.Ext.call_stack" in held.fields and "process.args" in held.fields
    assert "dll.name" in held.fields  # a flattened dotted key
    assert "process.code_signature.exists" not in held.fields and "process.pe" not in held.fields
    assert held.classes == {"process"}


def test_an_until_bracket_is_not_needed_to_fire():
    needs = rule_needs(parse_query('sequence [process where a == 1] [file where b == 1] until [dns where c == 1]'))
    assert needs.classes == {"process", "file"} and needs.fields == {"a", "b"}
    assert rule_needs(parse_query("any where x == 1")).classes == frozenset()


def test_coverage_counts_windows_rules_whose_every_field_and_class_is_held(tmp_path):
    ruleset = load_rules(write_corpus(tmp_path, RULES))
    windows = for_os(ruleset.rules, "windows")
    assert len(windows) == 7
    result = coverage(windows, Held.of([PROCESS]))
    firing = sorted(v.rule.name for v in result.verdicts if v.can_fire)
    assert firing == ["Any Class", "Reads A Frame", "Reads Held Fields", "Sequence Until"]
    assert result.covered == 4
    missing = {name: (count, alone) for name, count, alone in result.missing_fields()}
    assert missing["process.code_signature.trusted"] == (1, 1)
    assert missing["process.pe.original_file_name"] == (1, 0) and missing["process.hash.sha256"] == (1, 0)
    assert result.missing_classes() == [("dns", 1)]


def test_render_prints_each_event_set_and_the_missing_fields(tmp_path):
    ruleset = load_rules(write_corpus(tmp_path, RULES))
    windows = for_os(ruleset.rules, "windows")
    richer = dict(PROCESS, process=dict(PROCESS["process"], pe={"original_file_name": "Cmd.Exe"}))
    runs = [CoverageRun("memory image", 1, coverage(windows, Held.of([PROCESS]))),
            CoverageRun("with --files", 1, coverage(windows, Held.of([richer])))]
    text = render(runs, len(ruleset.rules), 0, "windows")
    assert "windows rules: 7 (of 8 loaded, 0 files failed)" in text
    assert "memory image                 4 / 7" in text and "with --files                 4 / 7" in text
    assert "      1     1  process.hash.sha256" in text  # with pe filled, the hash alone keeps one rule out
    assert "event classes we never emit: dns (1 rules)" in text


def test_field_usage_table_says_which_fields_are_held():
    from callstack_forensics.rules.coverage import parse_field_usage, render_usage

    usage = parse_field_usage("| rules | field |\n|---|---|\n| 495 | `event.action` |\n| 246 | `process.code_signature.subject_name` |\n")
    assert usage == [(495, "event.action"), (246, "process.code_signature.subject_name")]
    text = render_usage(usage, [("memory image alone", Held.of([PROCESS])), ("with --files", Held.of([PROCESS]))])
    assert "memory image alone       holds   1 / 2 fields" in text
    assert "    246  process.code_signature.subject_name" in text and "495  event.action" not in text
