"""How fast rules run: ``bench_rules(n_rules, n_events)`` for ``make bench``.

The rule mix imitates Elastic's endpoint rules (mostly process, library, file and API event
queries with ``_arraysearch`` over call stacks, some sequences and lineage) plus the shipped
rules; the events are the shipped fixtures' events, copied with fresh process identities and
timestamps. Compilation is timed apart from the run because a RuleSet compiles once.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any, Callable

from ..eql import compile_query
from . import default_rules_dir, load_rules
from .model import Rule
from .ruleset import RuleSet

_TEMPLATES: tuple[Callable[[int], str], ...] = (
    lambda i: (f'process where event.action == "start" and process.name : ("tool{i}.exe", "x{i}*.exe") and '
               f'_arraysearch(process.parent.thread.Ext.call_stack, $entry, $entry.symbol_info : "*!Fn{i}*")'),
    lambda i: (f'library where dll.name : ("lib{i}.dll", "mod{i}*.dll") and not dll.code_signature.status : "trusted" '
               f'and process.thread.Ext.call_stack_summary : ("ntdll.dll|*|mod{i}.dll*", "*|Unbacked")'),
    lambda i: (f'file where event.action != "deletion" and file.extension : ("exe", "dll", "ps{i}") and '
               f'process.executable : "?:\\\\Users\\\\*\\\\AppData\\\\*{i}*" and '
               f'not process.code_signature.trusted == true'),
    lambda i: (f'api where process.Ext.api.name in ("VirtualProtect", "Api{i}") and '
               f'process.thread.Ext.call_stack_final_user_module.name == "Unbacked" and '
               f'not process.thread.Ext.call_stack_final_user_module.protection_provenance : ("clr.dll", "m{i}.dll")'),
    lambda i: (f'any where event.action == "wait" and _arraysearch(process.thread.Ext.call_stack, $f, '
               f'$f.symbol_info : "Unbacked*" and $f.callsite_trailing_bytes : "*{i:04x}c3*")'),
    lambda i: (f'registry where registry.path : "HKEY_USERS\\\\*\\\\Run{i}\\\\*" and '
               f'registry.data.strings regex~ ".*payload{i}\\\\.(exe|dll)"'),
    lambda i: (f'sequence by process.entity_id with maxspan=1m '
               f'[process where event.action == "start" and process.name : "loader{i}*"] '
               f'[library where dll.name : ("ws2_32.dll", "x{i}.dll")]'),
    lambda i: (f'process where descendant of [process where process.name : "parent{i % 7}.exe"] and '
               f'process.name : ("child{i}.exe", "cmd.exe") and process.command_line : "* /c *{i}*"'),
)


def synthetic_rules(count: int) -> list[Rule]:
    """``count`` compiled rules: the shipped ones first, then template variants."""
    rules: list[Rule] = []
    shipped_dir = default_rules_dir()
    if shipped_dir.is_dir():
        rules.extend(load_rules([shipped_dir]).rules[:count])
    index = 0
    while len(rules) < count:
        text = _TEMPLATES[index % len(_TEMPLATES)](index)
        rules.append(Rule(id=f"bench-{index}", name=f"bench {index}", query=text, path=Path("<bench>"),
                          compiled=compile_query(text)))
        index += 1
    return rules


def synthetic_events(count: int) -> list[dict[str, Any]]:
    """``count`` events cycled from the shipped fixtures, each with its own process identity."""
    seeds = _fixture_events() or [{"event": {"category": ["process"], "action": "start"},
                                   "process": {"name": "cmd.exe", "pid": 1}}]
    events: list[dict[str, Any]] = []
    for n in range(count):
        event = copy.deepcopy(seeds[n % len(seeds)])
        _rename_process(event, n // len(seeds))
        event["@timestamp"] = f"2024-05-01T10:{(n // 60000) % 60:02d}:{(n // 1000) % 60:02d}.{n % 1000:03d}Z"
        events.append(event)
    return events


def _fixture_events() -> list[dict[str, Any]]:
    fixtures = default_rules_dir() / "fixtures"
    events: list[dict[str, Any]] = []
    for path in sorted(fixtures.glob("*/*.ndjson")):
        events.extend(json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return events


def _rename_process(event: dict[str, Any], generation: int) -> None:
    process = event.get("process")
    if not isinstance(process, dict) or not generation:
        return
    for holder in (process, process.get("parent")):
        if isinstance(holder, dict):
            if isinstance(holder.get("entity_id"), str):
                holder["entity_id"] = f"{holder['entity_id']}-g{generation}"
            if isinstance(holder.get("pid"), int):
                holder["pid"] += 100_000 * generation


def bench_rules(n_rules: int, n_events: int) -> dict[str, float]:
    """Compile ``n_rules`` rules and run them over ``n_events`` events; report the rates."""
    start = time.perf_counter()
    rules = synthetic_rules(n_rules)
    ruleset = RuleSet(rules)
    compile_seconds = time.perf_counter() - start
    events = synthetic_events(n_events)
    start = time.perf_counter()
    matches = ruleset.run(events)
    run_seconds = time.perf_counter() - start
    return {
        "rules": float(len(rules)),
        "events": float(len(events)),
        "matches": float(len(matches)),
        "compile_seconds": compile_seconds,
        "run_seconds": run_seconds,
        "events_per_second": len(events) / run_seconds if run_seconds else 0.0,
        "rule_events_per_second": len(rules) * len(events) / run_seconds if run_seconds else 0.0,
    }


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(bench_rules(300, 20_000), indent=2))
