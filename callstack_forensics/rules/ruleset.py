"""A set of compiled rules run together over an event set."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from ..eql import run_queries
from .loader import load_rule_file, rule_files
from .model import Match, Rule, RuleLoadError


class RuleSet:
    """Rules compiled once, run over events in one pass dispatched by ``event.category``.

    ``errors`` holds the files that failed to load; the rules that did load still run.
    ``notes`` says what loading merged (the same rule id in two files, loaded once).
    """

    def __init__(self, rules: Sequence[Rule], errors: Sequence[RuleLoadError] = (), notes: Sequence[str] = ()) -> None:
        missing = [r.id for r in rules if r.compiled is None]
        if missing:
            raise ValueError(f"rules without a compiled query: {missing}")
        self.rules: list[Rule] = list(rules)
        self.errors: list[RuleLoadError] = list(errors)
        self.notes: list[str] = list(notes)

    def __len__(self) -> int:
        return len(self.rules)

    def run(self, events: Iterable[dict[str, Any]]) -> list[Match]:
        """Every match, in event order. Events without ``@timestamp`` keep their input order."""
        queries = [rule.compiled for rule in self.rules]
        found = run_queries(queries, events)  # type: ignore[arg-type]
        return [Match(self.rules[index], match.events, match.frames) for index, match in found]

    def by_id(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


def load_rules(paths: Path | str | Iterable[Path | str]) -> RuleSet:
    """Load every rule file under ``paths`` (directories are searched recursively).

    A file that fails to load is reported in ``RuleSet.errors`` instead of stopping the load.
    A rule id met again (Elastic ships a rule once per OS folder under one id) is loaded once,
    the copy for Windows preferred, and ``RuleSet.notes`` names both files.
    """
    roots = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    loaded: dict[str, Rule] = {}
    errors: list[RuleLoadError] = []
    notes: list[str] = []
    for root in roots:
        if not root.exists():
            errors.append(RuleLoadError(root, 1, 1, "no such file or directory"))
            continue
        for path in rule_files([root]):
            _load_one(path, loaded, errors, notes)
    return RuleSet(list(loaded.values()), errors, notes)


def _load_one(path: Path, loaded: dict[str, Rule], errors: list[RuleLoadError], notes: list[str]) -> None:
    try:
        rule = load_rule_file(path)
    except RuleLoadError as exc:
        errors.append(exc)
        return
    kept = loaded.get(rule.id)
    if kept is None:
        loaded[rule.id] = rule
        return
    if _for_windows(rule) and not _for_windows(kept):
        loaded[rule.id] = rule
        kept, rule = rule, kept
    notes.append(f"rule id {kept.id} ({kept.name}) is in {kept.path} and {rule.path}: loaded once, from {kept.path}")


def _for_windows(rule: Rule) -> bool:
    return any(name.lower() == "windows" for name in rule.os_list)
