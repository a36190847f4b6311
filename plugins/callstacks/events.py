"""``callstacks.events``: the synthetic ECS events of an image, one row per event.

``-r jsonl`` writes the events themselves, one per line: ndjson ready for Elastic (or for
``callstack-forensics detect --events``). Other renderers show the short columns; the
event as JSON is the ``Event`` column, added with ``--ecs``.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, Iterator

from volatility3.cli import text_renderer
from volatility3.framework import interfaces, renderers
from volatility3.framework.configuration import requirements as vol_requirements

from callstack_forensics.volatility import collect, requirements
from callstack_forensics.process_life import freeze_at_exit

vollog = logging.getLogger(__name__)


class EcsJson(str):
    """A column holding one whole ECS event as JSON (the JSONL renderer writes it as the line)."""


class Events(interfaces.plugins.PluginInterface):
    """Synthetic ECS events (process, library, per-thread activity) built from what the image shows."""

    _required_framework_version = (2, 0, 0)
    _version = (2, 0, 0)

    @classmethod
    def get_requirements(cls) -> list[interfaces.configuration.RequirementInterface]:
        return requirements.event_requirements() + [
            vol_requirements.BooleanRequirement(name="ecs", description="Add the whole ECS event as JSON (Event column)",
                                                default=False, optional=True),
        ]

    def _with_event(self) -> bool:
        """The Event column is shown with --ecs, and always for -r jsonl, whose lines are the events."""
        return bool(self.config.get("ecs")) or _jsonl_requested(sys.argv)

    def _generator(self, with_event: bool) -> Iterator[tuple[int, tuple]]:
        for event in collect.plugin_events(self).events:
            row = event_row(event)
            if with_event:
                row += (EcsJson(json.dumps(event, sort_keys=True)),)
            yield (0, row)

    def run(self) -> renderers.TreeGrid:
        freeze_at_exit()  # vol exits after the plugin: without its last scan of the heap (~0.1 s)
        with_event = self._with_event()
        columns = [("PID", int), ("Process", str), ("TID", int), ("Category", str), ("Action", str)]
        if with_event:
            columns.append(("Event", EcsJson))
        return renderers.TreeGrid(columns, self._generator(with_event))


def event_row(event: dict[str, Any]) -> tuple:
    """The short columns of one event: who (PID, process, TID) and what (category, action)."""
    process = event.get("process", {})
    tid = (process.get("thread") or {}).get("id")
    kind = event.get("event", {})
    return (
        process.get("pid", -1),
        process.get("name") or "",
        tid if tid is not None else renderers.NotAvailableValue(),
        ",".join(kind.get("category", [])),
        kind.get("action") or "",
    )


def _jsonl_requested(argv: list[str]) -> bool:
    for index, arg in enumerate(argv):
        if arg in ("-r", "--renderer") and index + 1 < len(argv):
            return argv[index + 1].lower() == "jsonl"
        if arg.startswith("--renderer="):
            return arg.split("=", 1)[1].lower() == "jsonl"
    return False


class EcsJsonLinesRenderer(text_renderer.JsonLinesRenderer):
    """``-r jsonl``: for a grid with an :class:`EcsJson` column, each line is that event itself
    (ndjson Elastic ingests as is); any other plugin's grid renders exactly as Volatility's own."""

    name = "JSONL"

    def render(self, grid: interfaces.renderers.TreeGrid) -> None:
        index = next((i for i, c in enumerate(grid.columns) if c.type is EcsJson), None)
        if index is None:
            super().render(grid)
            return

        def visit(node: interfaces.renderers.TreeNode, accumulator: None) -> None:
            sys.stdout.write(str(node.values[index]) + "\n")

        if grid.populated:
            grid.visit(None, visit, None)
        else:
            grid.populate(visit, None)
