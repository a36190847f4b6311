"""The README's fleet example is real: the commands it shows, run here as it shows them (piped, no
COLUMNS), print what it shows. Times, the cluster's port and the order in which sources finish
change from run to run and are compared masked; everything else is compared as printed.

``python -m tests.fleet.test_readme`` runs the example and writes its output into README.md.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("SHARED", REPO.parent / "shared"))
CLI = Path(sys.executable).parent / "callstack-forensics"
README = REPO / "README.md"
COMMANDS = {
    "run": "callstack-forensics fleet fleet -o acme --symbols fleet/symbols",
    "query": 'callstack-forensics fleet query acme "SELECT host, rule_name, count(*) AS findings, max(stack_hosts) AS '
             'stack_hosts, max(fleet_hosts) AS fleet_hosts FROM findings GROUP BY ALL ORDER BY rule_name"',
    "counts": 'callstack-forensics fleet query acme "SELECT hosts, count(*) AS stacks, sum(threads) AS threads FROM '
              'stack_prevalence GROUP BY hosts ORDER BY hosts"',
    "rare": "callstack-forensics fleet rare acme -n 2",
}
VOLATILE = [(re.compile(r"tcp://[0-9.:]+"), "tcp://ADDRESS"), (re.compile(r"\d+:\d\d:\d\d"), "H:MM:SS"),
            (re.compile(r"\d+(\.\d+)? (s|sources/min|MiB)\b"), r"N \2"), (re.compile(r"/\S*/acme/"), "/CASE/acme/")]


def prepare(folder: Path) -> None:
    """The README's forge lines, in ``folder``."""
    shutil.rmtree(folder / "fleet", ignore_errors=True)
    shutil.rmtree(folder / "acme", ignore_errors=True)
    for line in readme_forge_lines():
        args = line.split()[1:]
        args[1] = str(REPO / args[1])
        subprocess.run([str(CLI), *args], cwd=folder, check=True, capture_output=True, timeout=300)
    shutil.copy(SHARED / "realdata" / "breakpad_tiny-exe-fastfail.dmp", folder / "fleet")


def readme_forge_lines() -> list[str]:
    return [line for line in README.read_text().splitlines()
            if line.startswith("callstack-forensics forge ") and "--computer-name" in line]


def run(folder: Path, command: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    args = [str(CLI), *_split(command)[1:]]
    done = subprocess.run(args, cwd=folder, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode in (0, 1), done.stderr
    text = done.stdout + done.stderr  # the run's lines are on stderr (stdout is for --json)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def _split(command: str) -> list[str]:
    import shlex

    return shlex.split(command)


def block(command: str) -> str:
    return README.read_text().split(f"$ {command}\n", 1)[1].split("\n```", 1)[0]


def masked(text: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        for pattern, replacement in VOLATILE:
            line = pattern.sub(replacement, line)
        lines.append(line)
    return sorted(lines)  # sources finish in any order


@pytest.mark.slow
def test_the_readme_fleet_example_prints_what_it_shows(tmp_path):
    prepare(tmp_path)
    assert masked(run(tmp_path, COMMANDS["run"])) == masked(block(COMMANDS["run"]))
    for name in ("query", "counts", "rare"):
        assert run(tmp_path, COMMANDS[name]) == block(COMMANDS[name]), name


def regenerate(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    prepare(folder)
    text = README.read_text()
    for command in COMMANDS.values():
        old = block(command)
        text = text.replace(f"$ {command}\n{old}\n```", f"$ {command}\n{run(folder, command)}\n```", 1)
        README.write_text(text)


if __name__ == "__main__":
    regenerate(REPO / "out" / "readme-fleet")
