"""The rules in rules/: they load, follow the layout, and their fixtures fire (or not) as written.

Fixtures live in rules/fixtures/<rule file stem>/: every positive*.ndjson event set must make that
rule fire, every negative*.ndjson (a near miss) must not.
"""

import re
import uuid
from pathlib import Path

import pytest

from callstack_forensics.eql.inspect import fields_read
from callstack_forensics.rules import default_rules_dir, load_rules
from callstack_forensics.rules.eventfile import read_events

RULES_DIR = default_rules_dir()
FIXTURES = RULES_DIR / "fixtures"
SEED_URL = "https://www.elastic.co/security-labs/peeling-back-the-curtain-with-call-stacks"
RULESET = load_rules([RULES_DIR])
BY_STEM = {rule.path.stem: rule for rule in RULESET.rules}


def fixture_files():
    return sorted(FIXTURES.glob("*/*.ndjson"))


def test_every_shipped_rule_loads():
    assert RULESET.errors == []
    assert len(RULESET.rules) == len(list(RULES_DIR.glob("*.toml"))) >= 28


@pytest.mark.parametrize("stem", sorted(BY_STEM))
def test_rule_layout(stem):
    rule = BY_STEM[stem]
    table = rule.raw["rule"]
    assert str(uuid.UUID(rule.id)) == rule.id
    assert rule.name and rule.description and rule.version
    assert rule.os_list == ["windows"]
    assert table["severity"] in ("low", "medium", "high", "critical")
    assert rule.threat and all(t["framework"] == "MITRE ATT&CK" and t["tactic"]["id"] for t in rule.threat)


def test_ids_and_names_are_unique():
    assert len({r.id for r in RULESET.rules}) == len({r.name for r in RULESET.rules}) == len(RULESET.rules)


def test_seed_rules_cite_the_article_and_say_how_they_were_adapted():
    seed = [r for r in RULESET.rules if SEED_URL in r.reference]
    assert len(seed) == 13
    assert all(r.adaptation for r in seed)


@pytest.mark.parametrize("stem", sorted(s for s, r in BY_STEM.items() if "required_fields" in r.raw["rule"]))
def test_memory_native_rules_declare_every_field_they_read(stem):
    rule = BY_STEM[stem]
    required = set(rule.raw["rule"]["required_fields"])
    for name in fields_read(rule.compiled.ast):
        assert name in required or any(r.startswith(name + ".") for r in required), name


def test_memory_native_rules_all_declare_fields():
    native = [r for r in RULESET.rules if SEED_URL not in r.reference]
    assert len(native) == 20
    assert all("required_fields" in r.raw["rule"] for r in native)


@pytest.mark.parametrize("stem", sorted(BY_STEM))
def test_each_rule_has_positive_and_negative_fixtures(stem):
    names = [p.name for p in (FIXTURES / stem).glob("*.ndjson")]
    assert any(n.startswith("positive") for n in names)
    assert any(n.startswith("negative") for n in names)


def test_every_fixture_directory_belongs_to_a_rule():
    assert {p.name for p in FIXTURES.iterdir() if p.is_dir()} <= set(BY_STEM)


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fixture(path: Path):
    rule = BY_STEM[path.parent.name]
    matches = RULESET.run(read_events(path))
    fired = [m for m in matches if m.rule.id == rule.id]
    if path.name.startswith("positive"):
        assert fired, f"{rule.name} did not fire on {path.name}"
    else:
        assert not fired, f"{rule.name} fired on the near miss {path.name}"


def _call_stack_values(node, key_prefix="callsite_"):
    if isinstance(node, dict):
        for key, value in node.items():
            if key.startswith(key_prefix):
                yield value
            else:
                yield from _call_stack_values(value, key_prefix)
    elif isinstance(node, list):
        for item in node:
            yield from _call_stack_values(item, key_prefix)


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fixture_callsite_bytes_have_the_documented_format(path: Path):
    for event in read_events(path):
        for value in _call_stack_values(event):
            assert re.fullmatch(r"[0-9a-f]{128}", value)
