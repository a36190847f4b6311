"""``callstacks.events``: the synthetic ECS events of an image, one row per event (JSON in a column).

``-r jsonl`` writes the events themselves, one per line: ndjson ready for Elastic (or for
``callstack-forensics detect --events``). Other renderers show the row, the event as JSON
in its ``Event`` column.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Iterator

from volatility3.cli import text_renderer
from volatility3.framework import interfaces, renderers
from volatility3.framework.configuration import requirements
from volatility3.plugins.windows import handles, info

from . import adapter
from .collect import collect_events

vollog = logging.getLogger(__name__)


class EcsJson(str):
    """A column holding one whole ECS event as JSON (the JSONL renderer writes it as the line)."""


def common_requirements() -> list[interfaces.configuration.RequirementInterface]:
    """What ``callstacks.events`` and ``callstacks.detect`` both need."""
    return adapter.process_requirements() + [
        requirements.BooleanRequirement(name="no-yara", description="Do not scan unbacked executable memory with YARA",
                                        default=False, optional=True),
        requirements.VersionRequirement(name="handles", component=handles.Handles, version=(4, 0, 0)),
        requirements.VersionRequirement(name="info", component=info.Info, version=(2, 0, 0)),
    ]


def collect(plugin: interfaces.plugins.PluginInterface, with_ancestors: bool = False):
    config = plugin.config
    collected = collect_events(plugin.context, config["kernel"], config.get("pid"), plugin._progress_callback,
                               int(config.get("max-frames") or 256), yara=not config.get("no-yara"),
                               with_ancestors=with_ancestors, max_stack_bytes=config.get("max-stack-bytes"))
    for note in collected.notes:
        vollog.warning("%s", note)
    return collected


class Events(interfaces.plugins.PluginInterface):
    """Synthetic ECS events (process, library, per-thread activity) built from what the image shows."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)

    @classmethod
    def get_requirements(cls) -> list[interfaces.configuration.RequirementInterface]:
        return common_requirements()

    def _generator(self) -> Iterator[tuple[int, tuple]]:
        na = renderers.NotAvailableValue()
        for event in collect(self).events:
            process = event.get("process", {})
            tid = (process.get("thread") or {}).get("id")
            kind = event.get("event", {})
            yield (0, (
                process.get("pid", -1),
                process.get("name") or "",
                tid if tid is not None else na,
                ",".join(kind.get("category", [])),
                kind.get("action") or "",
                EcsJson(json.dumps(event, sort_keys=True)),
            ))

    def run(self) -> renderers.TreeGrid:
        return renderers.TreeGrid(
            [("PID", int), ("Process", str), ("TID", int), ("Category", str), ("Action", str), ("Event", EcsJson)],
            self._generator(),
        )


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
