"""A wheel of the checkout, installed into a fresh virtual environment, once per session.

The checkout's tracked (and new, not ignored) files are copied first (tests/checkout.py), so the
wheel is built from what a clone holds, never from build output lying around.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.checkout import REPO, source_copy  # noqa: F401 - REPO: test_wheel's too
from tests.wine.conftest import captures  # noqa: F401 - the Wine minidump fixture, shared


@dataclass(frozen=True)
class Installed:
    """A fresh venv with the wheel installed, and how the build went."""

    venv: Path
    wheel: Path
    build_log: str
    install_seconds: float
    elsewhere: Path  # a folder outside the checkout to run the commands from

    def exe(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def run(self, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        return subprocess.run([self.exe(args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout,
                              cwd=self.elsewhere, env=_clean_env())


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH or virtual env of the test run leaks into the installed copy."""
    import os

    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


@pytest.fixture(scope="session")
def source_tree(tmp_path_factory) -> Path:
    return source_copy(tmp_path_factory.mktemp("source"))


@pytest.fixture(scope="session")
def installed(tmp_path_factory, source_tree) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(root / "dist"), str(source_tree)],
                           capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = (root / "dist").glob("*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    started = time.monotonic()
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], capture_output=True, text=True,
                          timeout=1800, env=_clean_env())
    assert done.returncode == 0, done.stdout + done.stderr
    elsewhere = root / "case"
    elsewhere.mkdir()
    return Installed(venv, wheel, built.stdout + built.stderr, time.monotonic() - started, elsewhere)
