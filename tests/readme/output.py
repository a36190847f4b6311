"""How a command's real output is held against the output the README shows.

Line by line and exact, after what a terminal does not show and what no run can repeat:
trailing spaces (rich pads table rows to the console width), blank lines before and after
the whole output, and elapsed times (``0:00:13`` in a progress bar).
"""

from __future__ import annotations

import re

ELAPSED = re.compile(r"\b\d+:\d\d:\d\d\b")
ELAPSED_MASK = "H:MM:SS"


def comparable(text: str) -> list[str]:
    lines = [ELAPSED.sub(ELAPSED_MASK, line.rstrip()) for line in text.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def first_difference(shown: str, printed: str) -> str | None:
    """None when they agree; else where they part, for the failure message."""
    want, got = comparable(shown), comparable(printed)
    for number, (a, b) in enumerate(zip(want, got), 1):
        if a != b:
            return f"output line {number}:\n  README: {a!r}\n  real:   {b!r}"
    if len(want) != len(got):
        return f"the README shows {len(want)} lines, the command printed {len(got)}"
    return None
