"""The README followed from top to bottom in one sandbox, as a reader would: each step sees
what the steps above it made (``make demo``'s image, ``events.ndjson``...)."""

from __future__ import annotations

import re

from .sandbox import Ran, Sandbox
from .steps import Command, Snippet, Step

TIMEOUT = 1800.0  # make demo on a fresh machine builds and captures the Wine programs
# `make test` is this suite: running it from inside itself would never end. Its line is
# checked by make's dry run (the target exists and runs pytest over the tests).
SELF = {"make test": "make -n test"}
# a fleet run (not its query, rare, report or export) exits 1 when the store holds findings
FINDINGS = re.compile(r"^callstack-forensics (analyze|report|detect|fleet(?! (query|rare|report|export)\b))\b")


def walk(sandbox: Sandbox, steps: list[Step]) -> dict[int, Ran]:
    """Every step run in order; README line -> what it did."""
    return {step.line: run_step(sandbox, step) for step in steps}


def run_step(sandbox: Sandbox, step: Step) -> Ran:
    if isinstance(step, Snippet):
        return sandbox.python(step.code, TIMEOUT)
    return sandbox.shell(as_run(step), TIMEOUT)


def as_run(command: Command) -> str:
    return SELF.get(command.text.strip(), command.text)


def allowed_exit_codes(command: Command) -> set[int]:
    """2 where the README shows an error; 1 or 0 as its output shows findings or none for the
    commands whose exit code says so; 0 for everything else."""
    shown = command.shown or ""
    if re.search(r"^error:", shown, re.M):
        return {2}
    if not FINDINGS.match(command.text):
        return {0}
    if re.search(r"^0 findings on ", shown, re.M):
        return {0}
    if re.search(r"^\d+ findings? (\(|on )", shown, re.M):
        return {1}
    if re.search(r"^no findings \(", shown, re.M):
        return {0}
    return {0, 1}
