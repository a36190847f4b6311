"""``callstacks.detect``: the detection rules run over the image's synthetic events, one row per match.

Rules come from the shipped ``rules/`` folder plus every ``--rules`` folder (Elastic's
endpoint-rule layout, e.g. a checkout of Elastic's public rules). ``--pid`` keeps the
matches with an event of those processes; the rules still see their ancestors' events,
so lineage rules (``descendant of``) work.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Iterator

from volatility3.framework import interfaces, renderers
from volatility3.framework.configuration import requirements

from callstack_forensics.events.detections import detection_row, matches_for_pids
from callstack_forensics.rules import default_rules_dir, load_rules

from .collect import rule_dirs
from .events import collect, common_requirements

vollog = logging.getLogger(__name__)


class Detect(interfaces.plugins.PluginInterface):
    """Runs Elastic-style call-stack detection rules over the events an image shows."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)

    @classmethod
    def get_requirements(cls) -> list[interfaces.configuration.RequirementInterface]:
        return common_requirements() + [
            requirements.ListRequirement(
                name="rules", element_type=str, optional=True,
                description="More rule folders (Elastic endpoint-rule TOML), added to the shipped rules/; repeatable",
            ),
        ]

    def _generator(self) -> Iterator[tuple[int, tuple]]:
        dirs = rule_dirs(self.config.get("rules"), sys.argv, default_rules_dir())
        ruleset = load_rules(dirs)
        for error in ruleset.errors:
            vollog.warning("rule not loaded: %s", error)
        collected = collect(self, with_ancestors=True)
        self._progress_callback(100.0, f"Running {len(ruleset)} rules over {len(collected.events)} events")
        na = renderers.NotAvailableValue()
        for match in matches_for_pids(ruleset.run(collected.events), collected.selected):
            row = detection_row(match)
            yield (0, (
                row.rule,
                row.rule_id,
                row.severity,
                row.pid if row.pid is not None else na,
                row.process or "",
                row.tid if row.tid is not None else na,
                " | ".join(row.event_actions),
                "; ".join(row.frames),
                json.dumps(row.evidence, sort_keys=True),
            ))

    def run(self) -> renderers.TreeGrid:
        return renderers.TreeGrid(
            [("Rule", str), ("RuleId", str), ("Severity", str), ("PID", int), ("Process", str), ("TID", int),
             ("Events", str), ("Frames", str), ("Evidence", str)],
            self._generator(),
        )
