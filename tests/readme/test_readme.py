"""Every command line the README shows is run by the suite, as written, and prints what the
README shows; every usage synopsis names options the commands take.

The README is followed from top to bottom in a copy of the checkout (conftest.py): `pipx
install`, `make demo`, the forge and `make samples` make the images, dumps and event files the
later commands read, as they would for a reader. Outputs are compared line by line (output.py);
the README's outputs are as printed 100 columns wide.
"""

from __future__ import annotations

import re
import shlex

import pytest

from .conftest import readme
from .output import first_difference
from .sandbox import Ran, Sandbox
from .steps import Command, Snippet, Step, Synopsis
from .walk import SELF, allowed_exit_codes

README = readme()
VOL_PLUGIN = re.compile(r"^[a-z]+\.[\w.]+$")  # windows.pslist, callstacks.detect
VOL_GLOBAL = ("-f", "-s", "-p", "-r", "-q")


def step_id(step: Step) -> str:
    text = step.text if isinstance(step, Command) else "python: " + step.code.splitlines()[0]
    return f"L{step.line}: {text.splitlines()[0][:60]}"


def test_every_line_of_a_shell_block_is_a_command_a_synopsis_or_a_commands_output():
    assert not README.strays, "\n".join(f"README.md:{s.line}: {s.why}: {s.text}" for s in README.strays)


def test_the_readme_has_commands_with_outputs_and_python_to_run():
    """The parse found what the README is made of (a broken parse would run nothing)."""
    commands = README.commands
    assert len([c for c in commands if c.shown]) >= 8 and len(commands) >= 25
    assert any(isinstance(s, Snippet) for s in README.steps) and len(README.synopses) >= 5
    assert {"make demo", "make samples"} <= {c.text.split("#")[0].strip() for c in commands}


@pytest.mark.parametrize("step", README.steps, ids=step_id)
def test_the_readme_step_runs_and_prints_what_the_readme_shows(step: Step, walkthrough: dict[int, Ran]):
    ran = walkthrough[step.line]
    if isinstance(step, Snippet):
        assert ran.code == 0, ran.output[-3000:]
        return
    assert ran.code in allowed_exit_codes(step), (
        f"README.md:{step.line}: `{step.text}` exited {ran.code}, expected {sorted(allowed_exit_codes(step))}:\n"
        f"{ran.output[-3000:]}")
    if step.text.strip() in SELF:
        assert re.search(r"-m pytest\b", ran.output), ran.output
    if step.shown is not None:
        difference = first_difference(step.shown, ran.output, step.text)
        assert difference is None, f"README.md:{step.line}: `{step.text}`: {difference}\n--- real output:\n{ran.output}"


def vol_tokens(text: str) -> tuple[list[str], str, list[str]] | None:
    """A vol line's options before the plugin, the plugin, and what follows it; None for other lines."""
    tokens = shlex.split(text.split("|")[0].replace("\\\n", " "))
    if not tokens or tokens[0] != "vol":
        return None
    plugin = next(n for n, token in enumerate(tokens) if VOL_PLUGIN.match(token))
    return tokens[1:plugin], tokens[plugin], tokens[plugin + 1:]


VOL_LINES = [s for s in [*README.commands, *README.synopses] if vol_tokens(s.text)]


@pytest.mark.parametrize("line", VOL_LINES, ids=lambda s: f"L{s.line}")
def test_vol_lines_give_the_image_and_symbols_before_the_plugin(line: Command | Synopsis):
    """Volatility refuses -f/-s/-p after the plugin name (`unrecognized arguments: -f`)."""
    before, plugin, after = vol_tokens(line.text)
    assert "-f" in before, line.text
    assert not [t for t in after if t in VOL_GLOBAL], f"after {plugin}: {line.text}"
    if plugin.startswith("callstacks."):
        assert "-p" in before, line.text


def options_of(text: str) -> list[str]:
    return re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", text)


def help_of(sandbox: Sandbox, command: str) -> str:
    ran = sandbox.shell(f"COLUMNS=200 {command} --help", 300)
    assert ran.code == 0, ran.output
    return ran.output


@pytest.mark.parametrize("synopsis", README.synopses, ids=lambda s: f"L{s.line}: {s.text[:50]}")
def test_a_synopsis_names_only_options_its_command_takes(synopsis: Synopsis, sandbox: Sandbox):
    words = synopsis.text.split()
    if words[0] == "vol":
        before, plugin, after = vol_tokens(synopsis.text)
        wanted = {f"vol -p plugins {plugin}": options_of(" ".join(after)), "vol": options_of(" ".join(before))}
    else:
        sub = " ".join(words[1:3]) if words[1] == "rules" else words[1]
        wanted = {f"callstack-forensics {sub}": options_of(" ".join(words[2:]))}
    for command, options in wanted.items():
        text = help_of(sandbox, command)
        missing = [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text)]
        assert not missing, f"README.md:{synopsis.line}: `{command} --help` has no {missing}"
