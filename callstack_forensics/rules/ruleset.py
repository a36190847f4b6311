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
    """

    def __init__(self, rules: Sequence[Rule], errors: Sequence[RuleLoadError] = ()) -> None:
        missing = [r.id for r in rules if r.compiled is None]
        if missing:
            raise ValueError(f"rules without a compiled query: {missing}")
        self.rules: list[Rule] = list(rules)
        self.errors: list[RuleLoadError] = list(errors)

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

    A file that fails to load is reported in ``RuleSet.errors`` instead of stopping the load;
    so is a second rule with an id already loaded.
    """
    roots = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    rules: list[Rule] = []
    errors: list[RuleLoadError] = []
    seen: dict[str, Path] = {}
    for root in roots:
        if not root.exists():
            errors.append(RuleLoadError(root, 1, 1, "no such file or directory"))
            continue
        for path in rule_files([root]):
            _load_one(path, rules, errors, seen)
    return RuleSet(rules, errors)


def _load_one(path: Path, rules: list[Rule], errors: list[RuleLoadError], seen: dict[str, Path]) -> None:
    try:
        rule = load_rule_file(path)
    except RuleLoadError as exc:
        errors.append(exc)
        return
    if rule.id in seen:
        errors.append(RuleLoadError(path, 1, 1, f"rule id {rule.id} is already used by {seen[rule.id]}"))
        return
    seen[rule.id] = path
    rules.append(rule)
