"""Detection rules: Elastic endpoint rule files, loaded, compiled once and run over events.

    from callstack_forensics.rules import load_rules
    ruleset = load_rules([Path("rules")])
    for match in ruleset.run(events):
        print(match.rule.name, match.matched_frames)
"""

from pathlib import Path

from ..resources import shipped_rules_dir
from .folders import rule_folders
from .model import Match, Rule, RuleLoadError
from .ruleset import RuleSet, load_rules


def default_rules_dir() -> Path:
    """The shipped rules: the repository's ``rules/`` in a checkout, package data when installed."""
    return shipped_rules_dir()


__all__ = ["Match", "Rule", "RuleLoadError", "RuleSet", "default_rules_dir", "load_rules", "rule_folders"]
