"""Rule files written the way Elastic's public endpoint behavior rules are laid out, by code.

Elastic's corpus (``behavior/rules/<os>/*.toml``) is not in this repository; these files copy
its *format*: the ``[rule]`` keys in its order (``license``, ``min_endpoint_version``,
``optional_actions``), ``[[actions]]``, ``[[threat]]`` with nested techniques, ``[internal]``,
the same rule id in a per-OS folder twice, and triple-quoted query strings whose text ends in
quotes. The queries are our own, written to exercise the loader and the coverage counter.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

TEMPLATE = '''[rule]
description = """
{description}
"""
id = "{id}"
license = "Elastic License v2"
name = "{name}"
os_list = [{os_list}]
reference = ["https://example.invalid/{slug}"]
version = "1.0.{version}"

query = \'\'\'
{query}
\'\'\'

min_endpoint_version = "8.4.0"
optional_actions = []
[[actions]]
action = "kill_process"
field = "process.entity_id"
state = 0
tree = false

[[threat]]
framework = "MITRE ATT&CK"
[[threat.technique]]
id = "T1055"
name = "Process Injection"
reference = "https://attack.mitre.org/techniques/T1055/"

[threat.tactic]
id = "TA0005"
name = "Defense Evasion"
reference = "https://attack.mitre.org/tactics/TA0005/"

[internal]
min_endpoint_version = "8.4.0"
'''


@dataclass
class StyledRule:
    """One rule to write: its folder (``windows``, ``linux``, ``cross-platform``...) and query."""

    name: str
    query: str
    folder: str = "windows"
    os_list: tuple[str, ...] = ("windows",)
    rule_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def slug(self) -> str:
        return "_".join(self.name.lower().split())


def write_corpus(root: Path, rules: list[StyledRule]) -> Path:
    """``root/behavior/rules/<folder>/<slug>.toml`` for each rule; returns ``root/behavior/rules``."""
    base = root / "behavior" / "rules"
    for index, rule in enumerate(rules):
        path = base / rule.folder / f"{rule.slug}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(TEMPLATE.format(
            description=f"Finds {rule.name.lower()}.", id=rule.rule_id, name=rule.name, slug=rule.slug,
            os_list=", ".join(f'"{o}"' for o in rule.os_list), version=index, query=rule.query.strip()))
    return base


def loader_corpus() -> list[StyledRule]:
    """What made Elastic's tree fail to load before: per-OS copies under one id, a raw string
    ending in quotes of its own, and tables the engine does not use."""
    shared = str(uuid.uuid4())
    return [
        StyledRule("Suspicious Script Host", 'process where process.name : ("wscript.exe", "cscript.exe")'),
        StyledRule("Quoted Command Line",
                   'process where process.command_line : """*\\Users\\Public\\*.exe "*""""'),
        StyledRule("Network Module Load", 'library where dll.name : "ws2_32.dll"', rule_id=shared,
                   folder="windows", os_list=("windows",)),
        StyledRule("Network Module Load", 'library where dll.name : "libc.so*"', rule_id=shared,
                   folder="linux", os_list=("linux",)),
        StyledRule("Shell From Unusual Parent", 'process where process.parent.name : "sshd"',
                   folder="cross-platform", os_list=("linux", "macos")),
    ]
