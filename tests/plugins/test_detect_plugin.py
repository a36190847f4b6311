"""`vol -p plugins callstacks.detect` on every forged scenario: exactly the detections it expects."""

from __future__ import annotations

import json
import tomllib

import pytest

from .conftest import SCENARIOS, forge, vol_json, vol_text

# Scenarios whose image lacks evidence a rule needs; strict, so the test fails (XPASS) once the forge adds it.
# Scenarios whose expected detections the image cannot yet evidence: scenario stem -> why.
KNOWN_GAPS: dict[str, str] = {}


def expected(scenario) -> set[str]:
    return set(tomllib.loads(scenario.read_text(encoding="utf-8"))["expect"])


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.stem)
def test_detect_reports_exactly_the_rules_the_scenario_expects(scenario, scenario_image, request):
    if scenario.stem in KNOWN_GAPS:
        request.applymarker(pytest.mark.xfail(reason=KNOWN_GAPS[scenario.stem], strict=True))
    rows = vol_json(scenario_image(scenario.stem), "callstacks.detect", "--evidence")
    assert {r["Rule"] for r in rows} == expected(scenario)
    for row in rows:
        assert row["RuleId"] and row["Severity"] in ("low", "medium", "high", "critical")
        assert row["PID"] is not None and row["Process"]
        evidence = json.loads(row["Evidence"])
        assert evidence and all(e["object"] in ("_EPROCESS", "_ETHREAD", "_LDR_DATA_TABLE_ENTRY", "_MMVAD")
                                for e in evidence)


def test_matched_frames_name_the_frames_that_made_the_rule_fire(scenario_image):
    rows = vol_json(scenario_image("dirty_vanity_fork"), "callstacks.detect", "--evidence")
    [rwx] = [r for r in rows if r["Rule"] == "Call Stack Frame in RWX Memory"]
    assert rwx["PID"] == 6092 and rwx["TID"] == 6096
    assert rwx["Frames"] == "#3 Unbacked"
    [fork] = [r for r in rows if r["Rule"] == "Fork Clone Not Created by Windows Error Reporting"]
    assert fork["PID"] == 6092 and fork["Events"] == "process/start"
    [evidence] = json.loads(fork["Evidence"])
    [creator] = evidence["related"]
    assert (creator["object"], creator["pid"], creator["tid"]) == ("_ETHREAD", 3140, 3200)


def test_pid_keeps_the_matches_of_those_processes_and_lineage_still_works(scenario_image):
    rows = vol_json(scenario_image("dirty_vanity_fork"), "callstacks.detect", "--pid", "6120")
    assert {(r["Rule"], r["PID"]) for r in rows} == {("Process Started by a Forked (Reflected) Process", 6120)}


def test_rules_folders_add_to_the_shipped_rules_and_repeat(scenario_image, tmp_path):
    folders = []
    for name, query in (("cmd", 'process where event.action == "start" and process.name : "cmd.exe"'),
                        ("ws2", 'library where dll.name : "ws2_32.dll"')):
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{name}.toml").write_text(
            f'[rule]\nid = "00000000-0000-4000-8000-00000000000{len(folders)}"\nname = "Test {name}"\n'
            f"query = '''\n{query}\n'''\n", encoding="utf-8")
        folders.append(str(folder))
    image = scenario_image("dirty_vanity_fork")
    repeated = {r["Rule"] for r in vol_json(image, "callstacks.detect", "--rules", folders[0], "--rules", folders[1])}
    together = {r["Rule"] for r in vol_json(image, "callstacks.detect", "--rules", *folders)}
    assert repeated == together
    assert {"Test cmd", "Fork Clone Not Created by Windows Error Reporting"} <= repeated
    assert "Test ws2" not in repeated, "dirty_vanity_fork's clone loads no ws2_32.dll"


@pytest.mark.parametrize("renderer", ["quick", "pretty", "csv", "json", "jsonl"])
def test_every_renderer(scenario_image, renderer):
    out = vol_text(scenario_image("dirty_vanity_fork"), renderer, "callstacks.detect")
    assert "Fork Clone Not Created by Windows Error Reporting" in out


def test_runs_as_typed_from_the_project_root(scenario_image):
    """`vol -p plugins callstacks.detect -f mem.raw` with the forged image's symbols beside it."""
    out = vol_text(scenario_image("direct_syscall"), "quick", "callstacks.detect", plugins="plugins")
    assert "Process Creation via Direct Syscall" in out


@pytest.mark.parametrize("name", ["dirty_vanity_fork", "remote_registry_run_key", "rop_library_load"])
def test_real_kernel_layouts_give_the_same_detections(name, real_isf, tmp_path):
    """CloneRoot, handle tables, key control blocks, impersonation tokens and SystemCallNumber
    read through each real symbol table (Windows 7 to 11 layouts)."""
    scenario = next(s for s in SCENARIOS if s.stem == name)
    image = forge(name, tmp_path / f"{name}.raw", real_isf)
    assert {r["Rule"] for r in vol_json(image, "callstacks.detect")} == expected(scenario)
