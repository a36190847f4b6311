"""Detection rules: Elastic endpoint rule files, loaded, compiled once and run over events.

    from callstack_forensics.rules import load_rules
    ruleset = load_rules([Path("rules")])
    for match in ruleset.run(events):
        print(match.rule.name, match.matched_frames)
"""

from pathlib import Path

from .model import Match, Rule, RuleLoadError
from .ruleset import RuleSet, load_rules


def default_rules_dir() -> Path:
    """The repository's ``rules/`` directory (next to the package in a source checkout)."""
    return Path(__file__).resolve().parents[2] / "rules"


__all__ = ["Match", "Rule", "RuleLoadError", "RuleSet", "default_rules_dir", "load_rules"]
