"""Which rules could ever fire on our events: every field they read is one our events hold.

A rule over a field no event of ours carries never fires, whatever the image shows, and
nothing says so. This module measures that for a rules folder against a set of events (those
built from the bundled scenarios, with and without ``--files``): a rule *can fire* when each
event class it needs (``process``, ``dns``... ``any`` needs none) and each field it reads
exists, with a value, in some event of ours. The fields still missing are listed by how many
rules read them and how many they alone keep out, the order in which filling them pays.

Only the brackets a sequence needs to complete count: an ``until`` bracket cancels a sequence,
so its fields and class are not needed for a rule to fire.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from ..eql import ast
from ..eql.inspect import fields_read
from .model import Rule

ANY = "any"


@dataclass(frozen=True, slots=True)
class Needs:
    """What one rule needs of the events: event classes and dotted field names."""

    classes: frozenset[str]
    fields: frozenset[str]


def rule_needs(query: ast.Query) -> Needs:
    """The classes and fields a query needs in order to match (an ``until`` bracket left out)."""
    if isinstance(query, ast.Sequence):
        without_until = dataclasses.replace(query, until=None)
        classes = {step.query.category for step in query.steps}
        return Needs(frozenset(classes - {ANY}), frozenset(fields_read(without_until)))
    return Needs(frozenset({query.category} - {ANY}), frozenset(fields_read(query)))


@dataclass(slots=True)
class Held:
    """The event classes and the dotted field paths (arrays of objects walked through) that hold a value."""

    classes: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)

    def add_event(self, event: Mapping[str, Any]) -> None:
        category = _get(event, "event", "category")
        for value in category if isinstance(category, list) else [category]:
            if isinstance(value, str):
                self.classes.add(value)
        leaves: set[str] = set()
        _paths(event, "", leaves)
        for leaf in leaves:  # an object or array that holds a value is itself a field with a value
            parts = leaf.split(".")
            self.fields.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))

    @classmethod
    def of(cls, events: Iterable[Mapping[str, Any]]) -> "Held":
        held = cls()
        for event in events:
            held.add_event(event)
        return held


def _get(event: Mapping[str, Any], *path: str) -> Any:
    value: Any = event
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _paths(value: Any, prefix: str, out: set[str]) -> None:
    """Every dotted path under ``value`` that leads to a non-null scalar or a non-empty array of them.

    A key with dots (``{"process.name": ...}``, Elastic's flattened form) counts as its path; an
    array of objects contributes its elements' fields under the array's own path, as EQL reads
    ``process.thread.Ext.call_stack.symbol_info``."""
    if isinstance(value, Mapping):
        for key, child in value.items():
            _paths(child, f"{prefix}.{key}" if prefix else str(key), out)
        return
    if isinstance(value, list):
        for item in value:
            _paths(item, prefix, out)
        return
    if value is not None and prefix:
        out.add(prefix)


@dataclass(slots=True)
class RuleVerdict:
    rule: Rule
    needs: Needs
    missing_classes: frozenset[str]
    missing_fields: frozenset[str]

    @property
    def can_fire(self) -> bool:
        return not self.missing_classes and not self.missing_fields


@dataclass(slots=True)
class Coverage:
    """The verdict on every rule of a folder against one set of held fields."""

    verdicts: list[RuleVerdict]

    @property
    def covered(self) -> int:
        return sum(1 for v in self.verdicts if v.can_fire)

    def missing_fields(self) -> list[tuple[str, int, int]]:
        """(field, rules reading it that cannot fire, rules it alone keeps out), most needed first."""
        reading: Counter[str] = Counter()
        alone: Counter[str] = Counter()
        for verdict in self.verdicts:
            reading.update(verdict.missing_fields)
            if len(verdict.missing_fields) == 1 and not verdict.missing_classes:
                alone.update(verdict.missing_fields)
        return sorted(((name, count, alone[name]) for name, count in reading.items()),
                      key=lambda row: (-row[1], -row[2], row[0]))

    def missing_classes(self) -> list[tuple[str, int]]:
        counts: Counter[str] = Counter(c for v in self.verdicts for c in v.missing_classes)
        return sorted(counts.items(), key=lambda row: (-row[1], row[0]))


def coverage(rules: Sequence[Rule], held: Held) -> Coverage:
    verdicts = []
    for rule in rules:
        needs = rule_needs(rule.compiled.ast)  # type: ignore[union-attr]
        verdicts.append(RuleVerdict(rule, needs, needs.classes - held.classes, needs.fields - held.fields))
    return Coverage(verdicts)


def for_os(rules: Iterable[Rule], os_name: str | None) -> list[Rule]:
    """The rules for one OS (``os_list`` names it, or the rule names none); all when ``os_name`` is None."""
    if os_name is None:
        return list(rules)
    wanted = os_name.lower()
    return [r for r in rules if not r.os_list or any(o.lower() == wanted for o in r.os_list)]


@dataclass(slots=True)
class CoverageRun:
    """One event set's name (``memory image``, ``with --files``) and its coverage."""

    label: str
    events: int
    result: Coverage


def render(runs: Sequence[CoverageRun], total_loaded: int, failed: int, os_name: str | None,
           top: int = 40) -> str:
    """The counts per event set, then the fields still missing after the last set, most needed first."""
    if not runs:
        return "no event sets"
    rules = len(runs[0].result.verdicts)
    scope = f"{os_name} rules" if os_name else "rules"
    lines = [f"{scope}: {rules} (of {total_loaded} loaded, {failed} files failed)",
             "rules whose every event class and field is in our events:"]
    for run in runs:
        lines.append(f"  {run.label:<24} {run.result.covered:>5} / {rules}   ({run.events} events)")
    last = runs[-1].result
    missing = last.missing_fields()
    lines.append(f"fields still missing ({runs[-1].label}): {len(missing)}; by rules that read them "
                 "(alone: rules that field alone keeps out)")
    lines.append(f"  {'rules':>5} {'alone':>5}  field")
    lines.extend(f"  {count:>5} {alone:>5}  {name}" for name, count, alone in missing[:top])
    if len(missing) > top:
        lines.append(f"  ... {len(missing) - top} more fields")
    classes = last.missing_classes()
    if classes:
        lines.append("event classes we never emit: " + ", ".join(f"{name} ({count} rules)" for name, count in classes))
    return "\n".join(lines)


def parse_field_usage(text: str) -> list[tuple[int, str]]:
    """``(rules, field)`` rows of a markdown table ``| 495 | `event.action` |`` (a field-usage count)."""
    import re

    return [(int(count), name) for count, name in re.findall(r"^\|\s*(\d+)\s*\|\s*`([^`]+)`\s*\|", text, re.MULTILINE)]


def render_usage(usage: Sequence[tuple[int, str]], runs: Sequence[tuple[str, Held]]) -> str:
    """For a field-usage table: how many of its fields each event set holds, and which it lacks."""
    lines = [f"fields of the usage table ({len(usage)} fields):"]
    for label, held in runs:
        have = [(n, f) for n, f in usage if f in held.fields]
        lines.append(f"  {label:<24} holds {len(have):>3} / {len(usage)} fields")
    label, held = runs[-1]
    missing = [(n, f) for n, f in usage if f not in held.fields]
    lines.append(f"fields of the table still missing ({label}), by the rules that read them:")
    lines.extend(f"  {n:>5}  {f}" for n, f in missing)
    return "\n".join(lines)
