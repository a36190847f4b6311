"""Counts in words: every table title, summary line and progress stage says ``1 finding`` and ``2 findings``."""

from __future__ import annotations


def plural(count: int, noun: str) -> str:
    """``1 finding``, ``2 findings``, ``1 process``, ``3 processes``, ``0 matches``."""
    if count == 1:
        return f"1 {noun}"
    return f"{count} {noun}es" if noun.endswith(("s", "x", "ch", "sh")) else f"{count} {noun}s"
