"""Forged images for the CLI tests (built once per session) and a runner for the real console script."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.plugins.conftest import forge

CLI = Path(sys.executable).parent / "callstack-forensics"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


def cli(*args: str | Path, cache: Path | None = None) -> Run:
    """The installed ``callstack-forensics`` script, as a responder types it."""
    cmd = [str(CLI), *map(str, args)]
    if cache is not None:
        cmd += ["--cache-dir", str(cache)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="session")
def fork_image(tmp_path_factory) -> Path:
    return forge("dirty_vanity_fork", tmp_path_factory.mktemp("cli-fork") / "fork.raw")


@pytest.fixture(scope="session")
def benign(tmp_path_factory) -> Path:
    return forge("benign_desktop", tmp_path_factory.mktemp("cli-benign") / "benign.raw")
