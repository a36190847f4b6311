"""The machine's name in every user process's environment: what tells a fleet's hosts apart."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from callstack_forensics.forge.scenario import ScenarioError, load_scenario
from tests.plugins.conftest import CLI, vol_json

from .conftest import REPO

SCENARIO = REPO / "samples" / "scenarios" / "benign_desktop.toml"


def forge(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), "forge", str(SCENARIO), "-o", str(out), "--ram", "256M", *args],
                          capture_output=True, text=True, timeout=300)


def test_computer_name_is_in_every_user_process_environment_as_volatility_reads_it(tmp_path):
    image = tmp_path / "ws.raw"
    assert forge(image, "--computer-name", "WS-0042").returncode == 0
    rows = vol_json(image, "windows.envars")
    names = {row["PID"]: row["Value"] for row in rows if row["Variable"] == "COMPUTERNAME"}
    with_env = {row["PID"] for row in rows}
    assert with_env and set(names) == with_env
    assert set(names.values()) == {"WS-0042"}


def test_without_a_name_no_computername_is_written(tmp_path):
    image = tmp_path / "plain.raw"
    assert forge(image).returncode == 0
    assert not [row for row in vol_json(image, "windows.envars") if row["Variable"] == "COMPUTERNAME"]


@pytest.mark.parametrize("name", ["", "has space", "WAY-TOO-LONG-NAME-1", "a\\b", "x=y"])
def test_a_name_windows_refuses_is_exit_2_with_the_reason(tmp_path, name):
    done = forge(tmp_path / "bad.raw", "--computer-name", name)
    assert done.returncode == 2
    assert "not a Windows computer name" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "bad.raw").exists()


def test_scenario_key_and_its_errors(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text(SCENARIO.read_text().replace("[system]", '[system]\ncomputer_name = "FIN-LAPTOP-7"', 1))
    assert load_scenario(good).computer_name == "FIN-LAPTOP-7"
    bad = tmp_path / "bad.toml"
    bad.write_text(SCENARIO.read_text().replace("[system]", '[system]\ncomputer_name = "no/slash"', 1))
    with pytest.raises(ScenarioError, match=r"bad.toml: \[system\].computer_name: 'no/slash' is not"):
        load_scenario(bad)
