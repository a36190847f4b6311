"""``callstacks.detect``: the detection rules run over the image's synthetic events, one row per match.

Rules come from the shipped rules plus every ``--rules`` folder (Elastic's endpoint-rule
layout, e.g. a checkout of Elastic's public rules). ``--pid`` keeps the matches with an
event of those processes; the rules still see their ancestors' events, so lineage rules
(``descendant of``) work. The columns are short, as Volatility's own plugins keep them;
the evidence objects (JSON) are the ``Evidence`` column, added with ``--evidence``.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Iterator

from volatility3.framework import interfaces, renderers
from volatility3.framework.configuration import requirements as vol_requirements
from volatility3.framework.renderers import format_hints

from callstack_forensics.analysis.findings import finding_from_match
from callstack_forensics.events.detections import matches_for_pids
from callstack_forensics.rules import default_rules_dir, load_rules
from callstack_forensics.volatility import collect, requirements
from callstack_forensics.process_life import freeze_at_exit

vollog = logging.getLogger(__name__)


class Detect(interfaces.plugins.PluginInterface):
    """Runs Elastic-style call-stack detection rules over the events an image shows."""

    _required_framework_version = (2, 0, 0)
    _version = (2, 0, 0)

    @classmethod
    def get_requirements(cls) -> list[interfaces.configuration.RequirementInterface]:
        return requirements.event_requirements() + [
            vol_requirements.ListRequirement(
                name="rules", element_type=str, optional=True,
                description="More rule folders (Elastic endpoint-rule TOML), added to the shipped rules; repeatable",
            ),
            vol_requirements.BooleanRequirement(name="evidence", description="Add the evidence objects (JSON) of each match",
                                                default=False, optional=True),
        ]

    def _generator(self, with_evidence: bool) -> Iterator[tuple[int, tuple]]:
        dirs = collect.rule_dirs(self.config.get("rules"), sys.argv, default_rules_dir())
        ruleset = load_rules(dirs)
        for error in ruleset.errors:
            vollog.warning("rule not loaded: %s", error)
        if not ruleset.rules:
            raise ValueError(f"no rules loaded from {', '.join(str(d) for d in dirs)}: nothing could be checked")
        collected = collect.plugin_events(self, with_ancestors=True)
        self._progress_callback(100.0, f"Running {len(ruleset)} rules over {len(collected.events)} events")
        na = renderers.NotAvailableValue()
        for match in matches_for_pids(ruleset.run(collected.events), collected.selected):
            finding = finding_from_match(match)
            offset = _subject_offset(finding.evidence)
            values = (
                finding.rule_name,
                finding.severity,
                finding.pid if finding.pid is not None else na,
                finding.process or "",
                finding.tid if finding.tid is not None else na,
                format_hints.Hex(offset) if offset is not None else na,
                ", ".join(finding.event_actions),
                "; ".join(frame.label() for frame in finding.frames),
                finding.rule_id,
            )
            if with_evidence:
                values += (json.dumps(finding.evidence, sort_keys=True),)
            yield (0, values)

    def run(self) -> renderers.TreeGrid:
        freeze_at_exit()  # vol exits after the plugin: without its last scan of the heap (~0.1 s)
        with_evidence = bool(self.config.get("evidence"))
        columns = [("Rule", str), ("Severity", str), ("PID", int), ("Process", str), ("TID", int),
                   ("Offset(V)", format_hints.Hex), ("Events", str), ("Frames", str), ("RuleId", str)]
        if with_evidence:
            columns.append(("Evidence", str))
        return renderers.TreeGrid(columns, self._generator(with_evidence))


def _subject_offset(evidence: list[dict]) -> int | None:
    """The kernel address of the object the finding is about (the first evidence object's
    ``_EPROCESS`` or ``_ETHREAD``), as windows.pslist shows its Offset(V)."""
    for item in evidence:
        address = item.get("address")
        if isinstance(address, str) and address.startswith("0x"):
            try:
                return int(address, 16)
            except ValueError:
                continue
        if isinstance(address, int):
            return address
    return None
