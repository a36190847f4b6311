"""`rules check` on a tree laid out as Elastic's behavior rules: exit 0, the merges named."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from callstack_forensics.cli.app import build_app
from callstack_forensics.rules import default_rules_dir, load_rules

from .corpus import StyledRule, loader_corpus, write_corpus

WIDE = {"COLUMNS": "250"}


def run(*args: str):
    return CliRunner().invoke(build_app(), list(args), env=WIDE)


def test_rules_check_loads_an_elastic_style_tree_and_names_what_it_merged(tmp_path):
    tree = write_corpus(tmp_path, loader_corpus())
    result = run("rules", "check", str(tree))
    assert result.exit_code == 0, result.stderr
    assert "4 rules parsed, 0 failures (1 rule id in two files, loaded once)" in result.stdout
    assert "note: rule id" in result.stderr
    assert "windows" in result.stderr and "linux" in result.stderr


def test_merged_rule_keeps_the_windows_copy_and_the_quoted_string_matches(tmp_path):
    tree = write_corpus(tmp_path, loader_corpus())
    ruleset = load_rules(tree)
    assert ruleset.errors == []
    network = next(r for r in ruleset.rules if r.name == "Network Module Load")
    assert network.os_list == ["windows"]
    quoted = next(r for r in ruleset.rules if r.name == "Quoted Command Line")
    event = {"event": {"category": "process"}, "process": {"command_line": 'C:\\Users\\Public\\a.exe "x"'}}
    assert quoted.compiled.matches(event)
    assert quoted.raw["actions"][0]["action"] == "kill_process" and "internal" in quoted.raw


def test_a_clean_tree_prints_no_notes(tmp_path):
    tree = write_corpus(tmp_path, [StyledRule("One", "process where true")])
    result = run("rules", "check", str(tree))
    assert result.exit_code == 0 and result.stderr == ""
    assert "1 rule parsed, 0 failures" in result.stdout


def _events(tmp_path):
    path = tmp_path / "events.ndjson"
    path.write_text(json.dumps({"event": {"category": "process"}, "process": {"name": "wscript.exe"}}) + "\n")
    return path


def test_detect_rules_adds_to_the_shipped_rules(tmp_path):
    tree = write_corpus(tmp_path, [StyledRule("Script Host", 'process where process.name : "wscript.exe"')])
    result = run("detect", "--events", str(_events(tmp_path)), "--rules", str(tree), "--json")
    assert result.exit_code == 1
    shipped = len(load_rules(default_rules_dir()).rules)
    assert "Script Host" in result.stdout
    only = run("detect", "--events", str(_events(tmp_path)), "--rules", str(tree),
                               "--no-shipped-rules", "--json")
    assert only.exit_code == 1 and [json.loads(l)["rule"]["name"] for l in only.stdout.splitlines()] == ["Script Host"]
    table = run("detect", "--events", str(_events(tmp_path)), "--rules", str(tree))
    assert f"{shipped + 1} rules over 1 event" in table.stdout


def test_no_shipped_rules_without_rules_is_a_usage_error(tmp_path):
    result = run("detect", "--events", str(_events(tmp_path)), "--no-shipped-rules")
    assert result.exit_code == 2 and "--no-shipped-rules needs" in result.stderr
