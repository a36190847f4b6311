"""Loading Elastic endpoint TOML rules: layout, positions of errors, unknown tables kept."""

from pathlib import Path

import pytest

from callstack_forensics.rules import Match, Rule, RuleLoadError, RuleSet, load_rules

ELASTIC_RULE = '''\
[rule]
description = """
A file dropped by a download utility is then run. Written in the layout of Elastic's endpoint
behavior rules, with the tables those files carry.
"""
id = "7d1c3a52-0b0e-4c53-9a57-3f54c8e0a2b1"
license = "Apache-2.0"
name = "Dropped File Executed"
os_list = ["windows"]
version = "1.0.3"

query = \'\'\'
sequence with maxspan=5m
  [file where event.action != "deletion" and process.name : ("curl.exe", "bitsadmin.exe")] as event0
  [process where event.action == "start" and startswith~(process.executable, event0.file.path)]
\'\'\'

min_endpoint_version = "8.4.0"
[[actions]]
action = "kill_process"
field = "process.entity_id"
state = 1

[[optional_actions]]
action = "rollback"
field = "process.entity_id"
state = 1

[[threat]]
framework = "MITRE ATT&CK"
[[threat.technique]]
id = "T1105"
name = "Ingress Tool Transfer"
reference = "https://attack.mitre.org/techniques/T1105/"

[threat.tactic]
id = "TA0011"
name = "Command and Control"
reference = "https://attack.mitre.org/tactics/TA0011/"

[internal]
min_endpoint_version = "8.4.0"
'''


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def minimal(rule_id="r1", query='process where process.name == "a"', extra=""):
    return f'[rule]\nid = "{rule_id}"\nname = "Rule {rule_id}"\n{extra}query = \'\'\'\n{query}\n\'\'\'\n'


def test_elastic_rule_loads_unchanged_with_unknown_tables_kept(tmp_path):
    write(tmp_path, "elastic.toml", ELASTIC_RULE)
    ruleset = load_rules([tmp_path])
    assert ruleset.errors == []
    (rule,) = ruleset.rules
    assert rule.id == "7d1c3a52-0b0e-4c53-9a57-3f54c8e0a2b1"
    assert rule.version == "1.0.3" and rule.os_list == ["windows"]
    assert rule.severity == "medium"  # Elastic files carry none
    assert rule.adaptation is None
    assert rule.raw["optional_actions"][0]["action"] == "rollback"
    assert rule.raw["internal"]["min_endpoint_version"] == "8.4.0"
    assert rule.raw["actions"][0]["action"] == "kill_process"
    assert rule.threat[0]["technique"][0]["id"] == "T1105"
    assert rule.raw["rule"]["min_endpoint_version"] == "8.4.0"


def test_elastic_sequence_rule_runs(tmp_path):
    write(tmp_path, "elastic.toml", ELASTIC_RULE)
    ruleset = load_rules(tmp_path)
    drop = {"event": {"category": "file", "action": "creation"}, "process": {"name": "CURL.EXE"},
            "file": {"path": "C:\\Users\\Public\\p.exe"}, "@timestamp": "2024-05-01T10:00:00Z"}
    run = {"event": {"category": "process", "action": "start"}, "process": {"executable": "c:\\users\\public\\p.exe"},
           "@timestamp": "2024-05-01T10:01:00Z"}
    (match,) = ruleset.run([drop, run])
    assert isinstance(match, Match) and match.events == [drop, run]


def test_our_severity_and_adaptation(tmp_path):
    write(tmp_path, "ours.toml", minimal(extra='severity = "high"\nadaptation = """\n Changed X.\n"""\n'))
    (rule,) = load_rules(tmp_path).rules
    assert rule.severity == "high" and rule.adaptation == "Changed X."


def test_invalid_severity_is_an_error_at_its_line(tmp_path):
    path = write(tmp_path, "bad.toml", minimal(extra='severity = "urgent"\n'))
    (error,) = load_rules(tmp_path).errors
    assert error.path == path and error.line == 4 and "severity" in error.message


def test_query_error_position_is_mapped_into_the_file(tmp_path):
    query = 'process where\n  process.name == "a" and\n  process.pid === 4'
    write(tmp_path, "bad.toml", minimal(query=query))
    (error,) = load_rules(tmp_path).errors
    # query starts on file line 5 (the line after query = \'\'\'); the error is on its 3rd line
    assert (error.line, error.column) == (7, 17)
    assert error.message.startswith("query: ")


def test_query_on_the_same_line_as_its_key(tmp_path):
    text = '[rule]\nid = "x"\nname = "x"\nquery = "process where ==" \n'
    write(tmp_path, "inline.toml", text)
    (error,) = load_rules(tmp_path).errors
    assert (error.line, error.column) == (4, 24)


def test_toml_syntax_error_position(tmp_path):
    write(tmp_path, "broken.toml", '[rule]\nid = "x"\nname = \n')
    (error,) = load_rules(tmp_path).errors
    assert error.line == 3 and "invalid TOML" in error.message


def test_missing_rule_table_and_keys(tmp_path):
    write(tmp_path, "a.toml", '[metadata]\nx = 1\n')
    write(tmp_path, "b.toml", '[rule]\nid = "b"\nname = "b"\n')
    errors = sorted(load_rules(tmp_path).errors, key=lambda e: e.path.name)
    assert "no [rule] table" in errors[0].message
    assert "'query'" in errors[1].message and errors[1].line == 1


def test_a_rule_id_in_two_files_is_loaded_once_and_said(tmp_path):
    """Elastic ships a rule once per OS folder under one id: never a refused file."""
    write(tmp_path, "a.toml", minimal("same"))
    write(tmp_path, "b.toml", minimal("same"))
    ruleset = load_rules(tmp_path)
    assert len(ruleset.rules) == 1 and ruleset.errors == []
    [note] = ruleset.notes
    assert "same" in note and "a.toml" in note and "b.toml" in note and "loaded once" in note


def test_of_two_copies_the_windows_one_is_kept(tmp_path):
    write(tmp_path, "linux/r.toml", minimal("dup", 'process where process.name == "linux"', 'os_list = ["linux"]\n'))
    write(tmp_path, "windows/r.toml", minimal("dup", 'process where process.name == "win"', 'os_list = ["windows"]\n'))
    write(tmp_path, "zmacos/r.toml", minimal("dup", 'process where process.name == "mac"', 'os_list = ["macos"]\n'))
    ruleset = load_rules(tmp_path)
    [rule] = ruleset.rules
    assert rule.os_list == ["windows"] and "win" in rule.query
    assert len(ruleset.notes) == 2 and all("windows" in note for note in ruleset.notes)


def test_a_triple_quoted_string_may_end_in_quotes_of_its_own(tmp_path):
    # Elasticsearch EQL, as TOML: up to two quotes right before the closing """ belong to the text
    query = 'process where process.command_line : """C:\\x "quoted""""'
    write(tmp_path, "q.toml", minimal("q", query))
    ruleset = load_rules(tmp_path)
    assert ruleset.errors == []
    [rule] = ruleset.rules
    assert rule.compiled.matches({"event": {"category": "process"}, "process": {"command_line": 'C:\\x "quoted"'}})


def test_fixtures_and_yara_directories_are_skipped(tmp_path):
    write(tmp_path, "r.toml", minimal("r"))
    write(tmp_path, "fixtures/r/whatever.toml", "not toml at all [")
    write(tmp_path, "yara/config.toml", "[scan]\nx=1\n")
    write(tmp_path, "nested/more.toml", minimal("m"))
    ruleset = load_rules(tmp_path)
    assert ruleset.errors == [] and sorted(r.id for r in ruleset.rules) == ["m", "r"]


def test_single_file_and_several_roots(tmp_path):
    a = write(tmp_path, "one/a.toml", minimal("a"))
    write(tmp_path, "two/b.toml", minimal("b"))
    assert [r.id for r in load_rules(a).rules] == ["a"]
    assert sorted(r.id for r in load_rules([tmp_path / "one", str(tmp_path / "two")]).rules) == ["a", "b"]


def test_missing_directory_is_an_error_not_a_crash(tmp_path):
    ruleset = load_rules([tmp_path / "nope"])
    assert ruleset.rules == [] and "no such file" in ruleset.errors[0].message


def test_load_error_is_an_exception_with_position(tmp_path):
    err = RuleLoadError(tmp_path / "x.toml", 3, 7, "bad")
    assert str(err).endswith("x.toml:3:7: bad")
    with pytest.raises(RuleLoadError):
        raise err


def test_match_to_json(tmp_path):
    write(tmp_path, "r.toml", minimal("r", 'process where _arraysearch(st, $f, $f.s == "y")'))
    ruleset = load_rules(tmp_path)
    ev = {"event": {"category": "process"}, "st": [{"s": "x"}, {"s": "y"}]}
    (match,) = ruleset.run([ev])
    data = match.to_json()
    assert data["rule"]["id"] == "r" and data["rule"]["severity"] == "medium"
    assert data["events"] == [ev]
    assert data["matched_frames"] == [{"field": "st", "index": 1}]


def test_run_keeps_input_order_without_timestamps(tmp_path):
    write(tmp_path, "r.toml", minimal("r", "any where true"))
    events = [{"n": i} for i in range(5)]
    assert [m.events[0]["n"] for m in load_rules(tmp_path).run(events)] == [0, 1, 2, 3, 4]


def test_run_sorts_by_timestamp_stably(tmp_path):
    write(tmp_path, "r.toml", minimal("r", "any where true"))
    events = [{"n": 0, "@timestamp": "2024-05-01T10:00:02Z"}, {"n": 1}, {"n": 2, "@timestamp": "2024-05-01T10:00:01Z"},
              {"n": 3, "@timestamp": "2024-05-01T10:00:01Z"}]
    # an untimed event stays right after the event it followed
    assert [m.events[0]["n"] for m in load_rules(tmp_path).run(events)] == [2, 3, 0, 1]


def test_ruleset_requires_compiled_rules(tmp_path):
    with pytest.raises(ValueError):
        RuleSet([Rule(id="x", name="x", query="any where true", path=tmp_path)])


def test_run_accepts_a_generator(tmp_path):
    write(tmp_path, "r.toml", minimal("r", "any where n > 2"))
    assert len(load_rules(tmp_path).run({"n": i} for i in range(5))) == 2
