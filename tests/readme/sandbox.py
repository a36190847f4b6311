"""The folder the README's commands run in: a copy of the checkout, as a reader's clone.

The README's commands are run as written, from the checkout's root, so the folder looks like
one: the tracked files (tests/checkout.py), ``../shared`` beside it, the project's virtual
environment as ``.venv`` and the Wine programs' build folder shared with the real checkout
(built and captured once per machine). What the commands write (``out/``, ``case.html``,
``events.ndjson``) stays in the copy; Volatility's cache is a fresh one, and ``pipx`` installs
into the sandbox, never into the user's home.

``.venv`` is a folder of links to the running environment's parts with a fresh ``.installed``
stamp of its own, so ``make`` in the copy never reinstalls: a reinstall there would point the
real environment's editable install at the copy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.checkout import REPO, source_copy

SHARED = Path(os.environ.get("SHARED", REPO.parent / "shared"))
WIDTH = "100"  # the README's outputs are as printed 100 columns wide
DROPPED = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "SHARED", "COLUMNS")


@dataclass(frozen=True)
class Ran:
    """What one command did: exit code, stdout and stderr as a terminal interleaves them, time."""

    code: int
    output: str
    seconds: float


@dataclass(frozen=True)
class Sandbox:
    root: Path  # the checkout's copy: every command runs here
    env: dict[str, str]

    def shell(self, command: str, timeout: float) -> Ran:
        """``command`` through bash (pipes fail when any part fails), output as a terminal shows it."""
        started = time.monotonic()
        done = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=self.root, env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        return Ran(done.returncode, done.stdout, time.monotonic() - started)

    def python(self, code: str, timeout: float) -> Ran:
        """A README Python block, run by the project's interpreter from the checkout's root."""
        started = time.monotonic()
        done = subprocess.run([str(self.root / ".venv" / "bin" / "python"), "-c", code], cwd=self.root, env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        return Ran(done.returncode, done.stdout, time.monotonic() - started)


def build_sandbox(folder: Path) -> Sandbox:
    """The checkout's copy in ``folder``, ready for the README's commands."""
    venv = running_venv()
    root = source_copy(folder / "callstack-forensics")
    (folder / "shared").symlink_to(SHARED, target_is_directory=True)
    link_venv(venv, root / ".venv")
    wine_build = REPO / "tests" / "wine" / "build"
    wine_build.mkdir(parents=True, exist_ok=True)
    (root / "tests" / "wine" / "build").symlink_to(wine_build, target_is_directory=True)
    return Sandbox(root, sandbox_env(folder, venv))


def running_venv() -> Path:
    if sys.prefix == sys.base_prefix:
        raise RuntimeError("the README tests run from the project's virtual environment (make test)")
    return Path(sys.prefix)


def link_venv(venv: Path, target: Path) -> None:
    """``target`` as the environment ``venv``: every entry linked, the install stamp its own."""
    target.mkdir()
    for entry in venv.iterdir():
        if entry.name != ".installed":
            (target / entry.name).symlink_to(entry)
    (target / ".installed").touch()  # newer than the copied pyproject.toml: make sees an install


def sandbox_env(folder: Path, venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROPPED}
    pipx_bin = folder / "bin"
    pip_cache = os.environ.get("PIP_CACHE_DIR") or str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pip")
    env.update(
        PATH=os.pathsep.join([str(pipx_bin), str(venv / "bin"), os.environ.get("PATH", "")]),
        COLUMNS=WIDTH,
        XDG_CACHE_HOME=str(folder / "cache"),  # Volatility's cache: nothing remembered from other runs
        PIP_CACHE_DIR=pip_cache,  # but pip keeps the machine's downloads
        PIPX_HOME=str(folder / "pipx"), PIPX_BIN_DIR=str(pipx_bin), PIPX_MAN_DIR=str(folder / "man"),
    )
    return env
