"""``callstack-forensics report``: exit codes, --json, where it writes and what it will not overwrite."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from callstack_forensics.cli.app import build_app

from .builders import Dom
from .conftest import report


def invoke(*args: str | Path):
    return CliRunner().invoke(build_app(), ["report", *map(str, args)])


def test_findings_exit_1_json_names_the_report(fork, tmp_path):
    out = tmp_path / "case.html"
    run = report(fork.image, out, "--symbols", fork.symbols, "--json")
    assert run.code == 1, run.stderr
    assert json.loads(run.stdout) == {"report": str(out.resolve()), "findings": 3}
    assert f"case report: {out.resolve()}" in run.stderr and "3 findings" in run.stderr
    dom = Dom(out.read_text(encoding="utf-8"))
    assert "Findings (3)" in dom.text and "Process Started by a Forked (Reflected) Process" in dom.text
    assert oct(out.stat().st_mode & 0o777) == oct(0o644)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_rerun_replaces_an_earlier_report_and_says_so(fork_report, fork, tmp_path):
    out = tmp_path / "again.html"
    out.write_bytes(fork_report.read_bytes())
    run = report(fork.image, out, "--symbols", fork.symbols, "--pid", "384")
    assert run.code == 0, run.stderr  # smss.exe alone: no findings
    assert "replaced the earlier one" in run.stderr
    assert "No rule fired." in Dom(out.read_text(encoding="utf-8")).text


def test_never_overwrites_another_file_without_force(tmp_path):
    evidence = tmp_path / "notes.txt"
    evidence.write_text("the analyst's notes\n")
    result = invoke(tmp_path / "mem.raw", "-o", evidence)
    assert result.exit_code == 2
    assert "exists and is not a case report" in result.output and "--force" in result.output
    assert evidence.read_text() == "the analyst's notes\n"


def test_never_overwrites_the_source_even_with_force(tmp_path):
    image = tmp_path / "mem.raw"
    image.write_bytes(b"\0" * 4096)
    result = invoke(image, "-o", image, "--force")
    assert result.exit_code == 2 and "is the source being analysed" in result.output
    assert image.read_bytes() == b"\0" * 4096


def test_output_folder_must_exist_and_output_must_be_a_file(tmp_path):
    result = invoke(tmp_path / "mem.raw", "-o", tmp_path / "nowhere" / "case.html")
    assert result.exit_code == 2 and "does not exist" in result.output
    result = invoke(tmp_path / "mem.raw", "-o", tmp_path)
    assert result.exit_code == 2 and "is a folder" in result.output


def test_force_replaces_another_file_but_input_errors_still_exit_2_and_write_nothing(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 64)
    out = tmp_path / "old.html"
    out.write_text("<html>someone else's page</html>")
    result = invoke(junk, "-o", out, "--force")
    assert result.exit_code == 2 and "not a Windows memory image" in result.output
    assert out.read_text() == "<html>someone else's page</html>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.bin", "old.html"]


def test_help_has_an_example_and_the_exit_codes():
    result = CliRunner().invoke(build_app(), ["report", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "callstack-forensics report mem.raw --symbols ./symbols -o case.html" in result.output
    assert "0 no findings, 1 findings, 2 usage or input error" in result.output
