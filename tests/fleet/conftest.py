"""A real Dask cluster on localhost (``dask scheduler`` and two ``dask worker`` processes) and a small
forged fleet: benign desktops on several real kernel layouts, an attack scenario, real minidumps
and one corrupt file. Every process is started here with a timeout and stopped at the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.plugins.conftest import CLI, REPO, SHARED

DASK = Path(sys.executable).parent / "dask"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
RAM = "256M"  # the image's size does not matter here; its processes and stacks do
# three benign desktops on three real kernel layouts (Windows 7, 10 2004, 11), and one attack
BENIGN = [("WS-WIN7", "339E74133576439CBCDF7E0229DA3773"), ("WS-WIN10", "BBED7C2955FBE4522AAA23F4B8677AD9"),
          ("WS-WIN11", "0CE4A95C0CD782A7596B034D8648E585")]
ATTACK = ("SRV-INFECTED", "direct_syscall")
DUMPS = ["breakpad_tiny-exe-fastfail.dmp", "breakpad_write_av_non_canonical.dmp"]


@dataclass
class Cluster:
    address: str
    processes: list[subprocess.Popen]


@dataclass
class Fleet:
    root: Path
    benign: list[Path]
    attack: Path
    dumps: list[Path]
    corrupt: Path
    extra: Path  # held back for the resume test
    symbols: list[Path]

    @property
    def good(self) -> list[Path]:
        return [*self.benign, self.attack, *self.dumps]


def _isf(identifier: str) -> Path:
    path = SHARED / "isf" / "windows" / "ntkrnlmp.pdb" / f"{identifier}-1.json.xz"
    if not path.is_file():
        pytest.fail(f"{path} is missing: the fleet tests need ../shared beside the checkout")
    return path


def _forge(scenario: str, out: Path, name: str, isf: Path | None = None, scale: int = 1) -> Path:
    cmd = [str(CLI), "forge", str(REPO / "samples" / "scenarios" / f"{scenario}.toml"), "-o", str(out),
           "--ram", RAM, "--computer-name", name, "--threads-scale", str(scale)]
    subprocess.run(cmd + (["--isf", str(isf)] if isf else []), check=True, capture_output=True, text=True, timeout=300)
    return out


@pytest.fixture(scope="session")
def fleet(tmp_path_factory) -> Fleet:
    root = tmp_path_factory.mktemp("fleet")
    benign = []
    for index, (name, isf) in enumerate(BENIGN):
        folder = root / f"capture{index}"
        # the first desktop is the biggest (more threads): the task that is running when a worker is killed
        benign.append(_forge("benign_desktop", folder / f"{name.lower()}.raw", name, _isf(isf), 3 if index == 0 else 1))
    attack = _forge(ATTACK[1], root / "attack" / "srv.raw", ATTACK[0])
    extra = _forge("wmi_event_consumer", root / "later" / "late.raw", "WS-LATE")
    dumps = [SHARED / "realdata" / name for name in DUMPS]
    corrupt = root / "corrupt" / "broken.raw"
    corrupt.parent.mkdir()
    corrupt.write_bytes(os.urandom(1 << 20))
    symbols = sorted({p.parent / "symbols" for p in [*benign, attack, extra]})
    return Fleet(root, benign, attack, dumps, corrupt, extra, symbols)


def _stop(processes: list[subprocess.Popen]) -> None:
    for proc in reversed(processes):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for proc in reversed(processes):
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Cluster:
    """``dask scheduler`` and two single-threaded ``dask worker`` processes (each with its nanny)."""
    folder = tmp_path_factory.mktemp("dask")
    scheduler_file = folder / "scheduler.json"
    logs = folder / "logs"
    logs.mkdir()
    started: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> None:
        log = (logs / f"{name}.log").open("w")
        started.append(subprocess.Popen([str(DASK), *args], stdout=log, stderr=subprocess.STDOUT, cwd=folder,
                                        start_new_session=True))

    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
              "--scheduler-file", str(scheduler_file))
        _wait_for(lambda: scheduler_file.is_file() and scheduler_file.stat().st_size > 0, "the scheduler file")
        address = json.loads(scheduler_file.read_text())["address"]
        for index in range(2):
            start(f"worker{index}", "worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1",
                  "--name", f"worker{index}", "--memory-limit", "4GB", "--local-directory", str(folder / f"w{index}"))
        from distributed import Client

        with Client(address, timeout="20s") as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT)
        yield Cluster(address, started)
    finally:
        _stop(started)


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not appear within {START_TIMEOUT:.0f} s")
        time.sleep(0.2)
