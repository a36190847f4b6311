"""``analyze``, ``events`` and ``stacks`` on memory images: the in-process pipeline gives what the
``vol`` plugins give, exit codes say clean/findings/error, and errors say what to do."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from tests.plugins.conftest import REPO, vol_json

from .conftest import cli


def expected_rules(scenario: str) -> set[str]:
    text = (REPO / "samples" / "scenarios" / f"{scenario}.toml").read_text(encoding="utf-8")
    return set(tomllib.loads(text)["expect"])


def symbols(image: Path) -> Path:
    return image.parent / "symbols"


def test_analyze_finds_what_the_vol_plugin_finds_and_exits_1(fork_image, tmp_path):
    run = cli("analyze", fork_image, "--symbols", symbols(fork_image), "--json", cache=tmp_path)
    assert run.code == 1, run.stderr
    found = run.json()
    assert {f["rule"]["name"] for f in found["findings"]} == expected_rules("dirty_vanity_fork")
    plugin_rows = vol_json(fork_image, "callstacks.detect")
    assert sorted((f["rule"]["name"], f["pid"]) for f in found["findings"]) == sorted(
        (r["Rule"], r["PID"]) for r in plugin_rows)
    # Human output went to stderr: the findings table, the per-process table and the stages.
    assert "findings" in run.stderr and "unbacked" in run.stderr and "RWX" in run.stderr and "threads" in run.stderr


def test_analyze_json_header_and_matched_frames(fork_image, tmp_path):
    found = cli("analyze", fork_image, "--symbols", symbols(fork_image), "--json", "-q", cache=tmp_path).json()
    source = found["source"]
    assert source["kind"] == "memory image" and source["size"] == fork_image.stat().st_size
    assert len(source["sha256"]) == 64 and source["windows"].startswith("Windows 10.")
    rwx = next(f for f in found["findings"] if f["rule"]["name"] == "Call Stack Frame in RWX Memory")
    assert rwx["frames"] and rwx["frames"][0]["symbol_info"] == "Unbacked"
    process = next(p for p in found["processes"] if p["pid"] == rwx["pid"])
    stack = next(s for s in process["stacks"] if s["tid"] == rwx["frames"][0]["tid"])
    assert stack["frames"][rwx["frames"][0]["index"]]["protection"] == "RWX"


def test_benign_image_is_clean_exit_0(benign, tmp_path):
    run = cli("analyze", benign, "--symbols", symbols(benign), "-q", cache=tmp_path)
    assert run.code == 0, run.stderr
    assert run.stdout == ""


def test_pid_keeps_lineage(fork_image, tmp_path):
    """The started-by-a-clone rule needs the parent (the clone): --pid of the child still finds it."""
    found = cli("analyze", fork_image, "--symbols", symbols(fork_image), "--pid", "6120", "--json", "-q",
                cache=tmp_path).json()
    assert {f["rule"]["name"] for f in found["findings"]} == {"Process Started by a Forked (Reflected) Process"}
    assert {f["pid"] for f in found["findings"]} == {6120}


def test_a_pid_that_selects_nothing_is_an_input_error_not_a_clean_run(fork_image, tmp_path):
    run = cli("analyze", fork_image, "--symbols", symbols(fork_image), "--pid", "99999", "--json", cache=tmp_path)
    assert run.code == 2 and run.stdout == ""
    assert "--pid 99999: no such process" in run.stderr and "6092" in run.stderr, run.stderr


def test_a_pid_list_with_one_unknown_pid_runs_and_notes_it(fork_image, tmp_path):
    run = cli("analyze", fork_image, "--symbols", symbols(fork_image), "--pid", "99999", "--pid", "6120", "--json",
              cache=tmp_path)
    assert run.code == 1
    assert "no process with PID 99999" in " ".join(run.json()["notes"])


def test_missing_symbols_name_the_kernel_pdb_and_the_fix(fork_image, tmp_path):
    run = cli("analyze", fork_image, cache=tmp_path)
    assert run.code == 2
    table = next((symbols(fork_image) / "windows" / "ntkrnlmp.pdb").glob("*.json.xz"))
    identifier = table.name.removesuffix(".json.xz")
    assert f"ntkrnlmp.pdb GUID-AGE {identifier}" in run.stderr
    assert "--symbols" in run.stderr and "Traceback" not in run.stderr


def test_not_an_image(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("incident notes, not a memory image\n" * 1000)
    run = cli("analyze", junk, cache=tmp_path / "cache")
    assert run.code == 2
    assert "not a Windows memory image" in run.stderr and "notes.txt" in run.stderr


def test_missing_file_and_folder_options(tmp_path):
    assert "no such file" in cli("analyze", tmp_path / "nope.raw").stderr
    run = cli("analyze", tmp_path / "nope.raw", "--rules", tmp_path / "missing-rules")
    assert run.code == 2


def test_events_file_feeds_detect_to_the_same_findings(fork_image, tmp_path):
    out = tmp_path / "events.ndjson"
    run = cli("events", fork_image, "--symbols", symbols(fork_image), "-o", out, "-q", cache=tmp_path)
    assert run.code == 0, run.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert {e["event"]["category"][0] for e in events} >= {"process", "library"}
    stacks = [e["process"]["thread"]["Ext"]["call_stack"] for e in events
              if "call_stack" in e.get("process", {}).get("thread", {}).get("Ext", {})]
    assert stacks and all(frame["symbol_info"] for stack in stacks for frame in stack)
    detect = cli("detect", "--events", out, "--json")
    assert detect.code == 1
    names = {json.loads(line)["rule"]["name"] for line in detect.stdout.splitlines()}
    assert names == expected_rules("dirty_vanity_fork")


def test_stacks_on_an_image_match_the_vol_plugin(fork_image, tmp_path):
    run = cli("stacks", fork_image, "--symbols", symbols(fork_image), "--pid", "6092", "--json", "-q", cache=tmp_path)
    assert run.code == 0, run.stderr
    ours = [json.loads(line) for line in run.stdout.splitlines()]
    rows = vol_json(fork_image, "callstacks.stacks", "--pid", "6092")
    for stack in ours:
        theirs = [r["Symbol"] for r in rows if r["TID"] == stack["tid"] and r["Symbol"]]
        assert [f["symbol_info"] for f in stack["frames"]] == theirs
    assert any("Unbacked" in f["symbol_info"] for s in ours for f in s["frames"])


def test_every_command_has_help_with_an_example():
    for command in ("analyze", "events", "stacks"):
        run = cli(command, "--help")
        assert run.code == 0 and "Example" in run.stdout and "--symbols" in run.stdout
