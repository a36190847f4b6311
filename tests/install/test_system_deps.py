"""`make system-deps` (tests/wine/install-system-deps.sh) with the real apt-get, against a dpkg
state of its own: a held dpkg lock is waited for, at most LOCK_WAIT seconds, and said once
while waiting; a failed install names its log.

apt reads its configuration from APT_CONFIG: the test points the dpkg status, the package
lists, the cache and the sources at a temporary folder, so nothing of the machine's apt is
read, locked or changed. ``id`` is a stub saying root, so the test runs for any user.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "wine" / "install-system-deps.sh"
MISSING = "cf-no-such-package"

pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None or shutil.which("dpkg-query") is None,
                                reason="apt-get and dpkg-query are Debian's")


@dataclass(frozen=True)
class Line:
    seconds: float  # after the script started
    text: str


def apt_sandbox(root: Path) -> dict[str, str]:
    """An environment whose apt-get keeps its dpkg lock, lists and cache under ``root``."""
    for folder in ("dpkg", "lists/partial", "cache/archives/partial", "sources.list.d", "bin"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "dpkg" / "status").write_text("")
    (root / "apt.conf").write_text("\n".join([
        f'Dir::State::status "{root}/dpkg/status";',
        f'Dir::State::Lists "{root}/lists";',
        f'Dir::Cache "{root}/cache";',
        'Dir::Etc::sourcelist "/dev/null";',
        f'Dir::Etc::sourceparts "{root}/sources.list.d";',
    ]) + "\n")
    stub = root / "bin" / "id"
    stub.write_text("#!/bin/sh\necho 0\n")
    stub.chmod(0o755)
    return {**os.environ, "APT_CONFIG": str(root / "apt.conf"), "PATH": f"{root / 'bin'}:{os.environ['PATH']}",
            "APT_LOG": str(root / "apt.log")}


def run_timed(env: dict[str, str], *packages: str) -> tuple[int, list[Line]]:
    """The script's stderr line by line, each with when it arrived."""
    started = time.monotonic()
    proc = subprocess.Popen(["bash", str(SCRIPT), *packages], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    lines = [Line(time.monotonic() - started, line.rstrip("\n")) for line in proc.stderr]
    return proc.wait(timeout=120), lines


def test_a_held_dpkg_lock_is_waited_for_and_said_once_while_waiting(tmp_path):
    env = {**apt_sandbox(tmp_path), "LOCK_WAIT": "6"}
    lock = os.open(tmp_path / "dpkg" / "lock-frontend", os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.lockf(lock, fcntl.LOCK_EX)  # as another apt holds it
        code, lines = run_timed(env, MISSING)
    finally:
        os.close(lock)
    failed = next(n for n, line in enumerate(lines) if "apt-get install failed" in line.text)
    ended = lines[failed].seconds
    waiting = [line for line in lines[:failed] if "Waiting for cache lock" in line.text]  # then apt's log tail
    assert code == 1, lines
    assert len(waiting) == 1, lines  # apt repeats it every second; shown once
    assert f"held by process {os.getpid()}" in waiting[0].text
    assert ended - waiting[0].seconds >= 2, "the wait is shown while it lasts, not after"
    assert ended >= 6, "LOCK_WAIT seconds are waited before giving up"
    assert lines[failed].text == f"system-deps: apt-get install failed, see {tmp_path / 'apt.log'}"
    texts = [line.text for line in lines]
    assert texts[0].startswith(f"system-deps: installing {MISSING} (a few minutes; waits up to 6s")
    assert "system-deps: refreshing the package index (apt-get update)" in texts


def test_nothing_missing_is_silent_and_touches_no_apt(tmp_path):
    env = apt_sandbox(tmp_path)
    code, lines = run_timed(env, "bash", "coreutils")
    assert code == 0 and lines == []
    assert not (tmp_path / "apt.log").exists()


def test_without_root_it_names_what_is_missing_and_goes_on(tmp_path):
    env = apt_sandbox(tmp_path)
    (tmp_path / "bin" / "id").write_text("#!/bin/sh\necho 1000\n")
    code, lines = run_timed(env, "bash", MISSING)
    assert code == 0
    assert [line.text for line in lines] == [f"system-deps: missing {MISSING} (run as root on Debian to install them)"]
