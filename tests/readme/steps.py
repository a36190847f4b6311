"""What the README's code blocks ask of a reader: commands to run (with the output the README
shows for them), synopses to read, and Python to run.

Shell blocks (no info string, or ``sh``/``bash``/``console``) are read as a reader reads them:

- ``$ command`` lines (a trailing backslash continues one) are commands; the lines up to the
  next ``$`` are the output the README shows for it (none shown: nothing is compared);
- in a block without ``$``, every line is a command, or a synopsis when it holds a placeholder
  (``IMAGE_OR_DUMP``, ``DIR``, ``N``, an optional ``[--pid N ...]``): a synopsis says what to
  type and is not run, but the options it names must exist;
- anything else in a shell block is a stray: output shown without the command that prints it,
  or text that looks like neither. The tests refuse strays, so nothing runnable escapes.

``python`` blocks are run whole. Other blocks (``toml``, ``json``, ``text``) are data and prose.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from .markdown import Block, fenced_blocks

SHELL = {"", "sh", "bash", "shell", "console"}
PROGRAM = re.compile(r"^(callstack-forensics|vol|make|pipx|pip|python3?|jq|cp|tar|mkdir|cd|\.venv/bin/\S+)(\s|$)")
# An optional part in brackets, or an upper-case word standing for a value: DIR, N,
# IMAGE_OR_DUMP, SCENARIO.toml, DIR/symbols (never part of a longer word such as RuleId).
PLACEHOLDER = re.compile(r"\[[^\]]*\]|(?<![\w$./\\-])[A-Z][A-Z0-9_]*(?:\.[a-z]+|/[\w./-]+)?(?![\w.\\-])")
COMMENT = re.compile(r"\s+#\s.*$")


@dataclass(frozen=True)
class Command:
    """A command line to run from the checkout's root, and the output the README shows for it."""

    line: int
    text: str  # as written; continuation lines joined with their backslashes
    shown: str | None  # None: the README shows no output for it


@dataclass(frozen=True)
class Snippet:
    """A Python block, run whole from the checkout's root."""

    line: int
    code: str


@dataclass(frozen=True)
class Synopsis:
    """A usage line with placeholders: read, not run."""

    line: int
    text: str


@dataclass(frozen=True)
class Stray:
    """A line of a shell block that is no command, no synopsis and no output of a command."""

    line: int
    text: str
    why: str


Step = Command | Snippet


@dataclass(frozen=True)
class Readme:
    """Everything the README's code blocks hold, in document order."""

    steps: list[Step]
    synopses: list[Synopsis]
    strays: list[Stray]

    @property
    def commands(self) -> list[Command]:
        return [s for s in self.steps if isinstance(s, Command)]


def read_readme(text: str) -> Readme:
    steps: list[Step] = []
    synopses: list[Synopsis] = []
    strays: list[Stray] = []
    for block in fenced_blocks(text):
        if block.info == "python":
            steps.append(Snippet(block.first_line, "\n".join(block.lines) + "\n"))
        elif block.info in SHELL:
            found = session(block) if any(is_prompt(line) for line in block.lines) else listing(block)
            for item in found:
                {Command: steps, Synopsis: synopses, Stray: strays}[type(item)].append(item)
    return Readme(steps, synopses, strays)


def is_prompt(line: str) -> bool:
    return line.startswith("$ ")


def code_of(line: str) -> str:
    """The line without a trailing ``# comment``."""
    return COMMENT.sub("", line).strip()


def logical_lines(block: Block) -> list[tuple[int, list[str]]]:
    """The block's lines with continued commands joined (a trailing backslash, or a quote still
    open: a jq program over several lines), each with its first line number."""
    out: list[tuple[int, list[str]]] = []
    continued = False
    for offset, line in enumerate(block.lines):
        if continued:
            out[-1][1].append(line)
        else:
            out.append((block.first_line + offset, [line]))
        text = "\n".join(out[-1][1])
        continued = is_command_start(out[-1][1][0]) and not complete(text)
    return out


def is_command_start(line: str) -> bool:
    return is_prompt(line) or bool(PROGRAM.match(code_of(line)))


def complete(text: str) -> bool:
    """Whether a shell command ends here: no trailing backslash, every quote closed."""
    if text.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(text, comments=True)
    except ValueError:  # "No closing quotation"
        return False
    return True


def session(block: Block) -> list[Command | Stray]:
    """``$`` commands, each followed by the output the README shows for it."""
    found: list[Command | Stray] = []
    pending: tuple[int, str] | None = None
    output: list[str] = []
    for number, lines in logical_lines(block):
        if is_prompt(lines[0]):
            if pending is not None:
                found.append(command_with(pending, output))
            pending, output = (number, "\n".join([lines[0][2:], *lines[1:]])), []
        elif pending is None:
            if lines[0].strip():
                found.append(Stray(number, lines[0], "output shown before any command"))
        else:
            output.extend(lines)
    if pending is not None:
        found.append(command_with(pending, output))
    return found


def command_with(pending: tuple[int, str], output: list[str]) -> Command:
    shown = "\n".join(output).strip("\n")
    return Command(pending[0], pending[1], shown if shown.strip() else None)


def listing(block: Block) -> list[Command | Synopsis | Stray]:
    """A block without prompts: each line a command or a synopsis."""
    found: list[Command | Synopsis | Stray] = []
    for number, lines in logical_lines(block):
        text = "\n".join(lines)
        code = code_of(text)
        if not code:
            continue
        if not PROGRAM.match(code):
            found.append(Stray(number, text, "neither a command nor a synopsis (a `$ ` line shows a command's output)"))
        elif PLACEHOLDER.search(code):
            found.append(Synopsis(number, code))
        else:
            found.append(Command(number, text, None))
    return found
