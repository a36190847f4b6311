"""Follow the README in a sandbox and show where its outputs differ from the real ones.

    python -m tests.readme           # the differences, command by command
    python -m tests.readme --write   # write the real outputs into README.md (review the diff!)

For when the tool's output changes on purpose (a new rule, a new column): the README test
fails until the README shows the new output, and this writes it from real runs.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from .conftest import README
from .output import comparable, first_difference
from .sandbox import Ran, build_sandbox
from .steps import Command, read_readme
from .walk import walk


def main(argv: list[str]) -> int:
    text = README.read_text(encoding="utf-8")
    readme = read_readme(text)
    with tempfile.TemporaryDirectory(prefix="readme-") as folder:
        results = walk(build_sandbox(Path(folder)), readme.steps)
    shown = [c for c in readme.commands if c.shown is not None]
    differing = [c for c in shown if first_difference(c.shown, results[c.line].output, c.text)]
    for command in differing:
        print(f"README.md:{command.line}: {command.text}\n{first_difference(command.shown, results[command.line].output, command.text)}\n")
    if "--write" in argv and differing:
        README.write_text(with_outputs(text, differing, results), encoding="utf-8")
        print(f"wrote {len(differing)} outputs into {README}")
    print(f"{len(readme.steps)} steps run, {len(shown)} outputs compared, {len(differing)} differ")
    return 1 if differing and "--write" not in argv else 0


def with_outputs(text: str, commands: list[Command], results: dict[int, Ran]) -> str:
    """``text`` with each command's shown output replaced by what it printed (trailing spaces
    and surrounding blank lines dropped, as the comparison drops them)."""
    lines = text.split("\n")
    for command in sorted(commands, key=lambda c: c.line, reverse=True):
        start = command.line - 1 + command.text.count("\n") + 1  # the first line after the command
        end = start
        while end < len(lines) and not lines[end].startswith(("$ ", "```")):
            end += 1
        printed = [line.rstrip() for line in results[command.line].output.splitlines()]
        lines[start:end] = trim(printed, len(comparable(results[command.line].output)))
    return "\n".join(lines)


def trim(printed: list[str], kept: int) -> list[str]:
    """The printed lines without the blank lines before and after them."""
    while printed and not printed[0]:
        printed.pop(0)
    return printed[:kept]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
