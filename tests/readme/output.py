"""How a command's real output is held against the output the README shows.

Line by line and exact, after what a terminal does not show and what no run can repeat:
trailing spaces (rich pads table rows to the console width), blank lines before and after
the whole output, and elapsed times (``0:00:13`` in a progress bar). A fleet run also prints
what no two runs share (the local cluster's address, each source's time, the rate, the
workers' memory) and its sources finish in any order: its lines are compared with those
masked, as a set of lines.
"""

from __future__ import annotations

import re

ELAPSED = re.compile(r"\b\d+:\d\d:\d\d\b")
ELAPSED_MASK = "H:MM:SS"
FLEET_VOLATILE = [(re.compile(r"tcp://[0-9.:]+"), "tcp://ADDRESS"),
                  (re.compile(r"\b\d+(\.\d+)? (s|sources/min|MiB)\b"), r"N \2")]


def is_fleet_run(command: str) -> bool:
    """``callstack-forensics fleet SOURCES...``, not one of its query subcommands."""
    words = command.split()
    return words[:2] == ["callstack-forensics", "fleet"] and len(words) > 2 and \
        words[2] not in ("query", "rare", "report", "export")


def comparable(text: str) -> list[str]:
    lines = [ELAPSED.sub(ELAPSED_MASK, line.rstrip()) for line in text.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def fleet_comparable(text: str) -> list[str]:
    lines = comparable(text)
    for pattern, mask in FLEET_VOLATILE:
        lines = [pattern.sub(mask, line) for line in lines]
    return sorted(lines)


def first_difference(shown: str, printed: str, command: str = "") -> str | None:
    """None when they agree; else where they part, for the failure message."""
    compare = fleet_comparable if is_fleet_run(command) else comparable
    want, got = compare(shown), compare(printed)
    for number, (a, b) in enumerate(zip(want, got), 1):
        if a != b:
            return f"output line {number}:\n  README: {a!r}\n  real:   {b!r}"
    if len(want) != len(got):
        return f"the README shows {len(want)} lines, the command printed {len(got)}"
    return None
