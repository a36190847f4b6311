"""What a responder meets in the first hour: mistakes are exit 2 with a reason, tables on stdout,
one way to print a finding, 80 columns, plain --help, counts in words."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from callstack_forensics.analysis import Analysis, Finding
from callstack_forensics.analysis.fingerprint import sha256_file
from callstack_forensics.analysis.model import MatchedFrame, OpenedProcess, ProcessResult
from callstack_forensics.cli.app import build_app
from callstack_forensics.cli.filters import check_filters
from callstack_forensics.cli.tables import display_name, findings_view, process_table
from callstack_forensics.wording import plural
from callstack_forensics.memory import ProcessInfo
from callstack_forensics.rules import default_rules_dir
from callstack_forensics.sources import SourceError

from tests.realdata.conftest import dump_named

from .conftest import CLI, cli


def symbols(image: Path) -> Path:
    return image.parent / "symbols"

COMMANDS = ["analyze", "report", "events", "stacks", "detect", "rules check", "forge", "plugins-path"]


def env_with(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}


def run(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, input=stdin, timeout=600,
                          env=env_with(**env))


# -- mistakes never read as clean -------------------------------------------------------------

def test_stacks_with_a_pid_or_tid_that_selects_nothing_exits_2_saying_what_is_there(fork_image):
    for args, says in ((["--pid", "99999"], "--pid 99999: no such process"),
                       (["--pid", "6092", "--tid", "99999"], "--tid 99999: no such thread")):
        done = run("stacks", fork_image, "--symbols", symbols(fork_image), *args)
        assert done.returncode == 2 and done.stdout == "", done.stderr
        assert says in done.stderr and ("6092" in done.stderr or "6096" in done.stderr), done.stderr


def test_events_and_report_refuse_a_pid_that_selects_nothing(fork_image, tmp_path):
    events = run("events", fork_image, "--symbols", symbols(fork_image), "--pid", "99999")
    report = run("report", fork_image, "--symbols", symbols(fork_image), "--pid", "99999", "-o", tmp_path / "c.html")
    for done in (events, report):
        assert done.returncode == 2 and "--pid 99999: no such process" in done.stderr, done.stderr
    assert not (tmp_path / "c.html").exists()


def stages_run(stderr: str) -> list[str]:
    """The progress stages a run started, in order (each is one bar line on stderr)."""
    return [line.split()[0] for line in stderr.splitlines() if "━" in line]


@pytest.mark.parametrize("command", ["analyze", "report", "events"])
def test_a_pid_that_selects_nothing_is_refused_before_hashing_or_walking(fork_image, tmp_path, command):
    """Hashing the 4 GiB image took about 14 s before the old check said the pid was not there:
    the check now runs on the process list, and neither the hash nor a walk starts."""
    output = ["-o", tmp_path / "out"] if command == "report" else []
    done = run(command, fork_image, "--symbols", symbols(fork_image), "--pid", "99999", *output, COLUMNS="120")
    assert done.returncode == 2 and "--pid 99999: no such process" in done.stderr, done.stderr
    assert stages_run(done.stderr) == ["image", "processes"], done.stderr


def test_the_image_is_hashed_once_the_process_list_has_passed_the_filters(fork_image):
    done = run("analyze", fork_image, "--symbols", symbols(fork_image), "--pid", "6092", COLUMNS="120")
    assert done.returncode == 1, done.stderr
    assert stages_run(done.stderr) == ["image", "processes", "sha256", "threads", "events", "rules"]


def test_the_hash_runs_beside_the_walk_and_a_failed_hash_keeps_the_findings(fork_image, tmp_path, monkeypatch):
    """The image is hashed by a child process from the start; if it cannot be read to its end,
    the record has no hash and a note says why, and the findings are all still there."""
    from callstack_forensics.analysis import fingerprint

    args = ["analyze", str(fork_image), "--symbols", str(symbols(fork_image)), "--json", "-q",
            "--cache-dir", str(tmp_path)]
    whole = CliRunner().invoke(build_app(), args)
    assert whole.exit_code == 1, whole.output

    def unreadable(self):
        raise OSError(f"SHA-256 of {self.path} not worked out: [Errno 5] Input/output error")

    monkeypatch.setattr(fingerprint.BackgroundSha256, "result", unreadable)
    failed = CliRunner().invoke(build_app(), args)
    assert failed.exit_code == 1, failed.output
    good, bad = json.loads(whole.stdout), json.loads(failed.stdout)
    assert good["source"]["sha256"] == sha256_file(fork_image) and bad["source"]["sha256"] is None
    assert bad["findings"] == good["findings"] and bad["findings"]
    assert f"SHA-256 of {fork_image} not worked out: [Errno 5] Input/output error" in bad["notes"]


def test_a_filter_miss_names_at_most_40_ids_and_counts_the_rest():
    opened = [OpenedProcess(ProcessInfo(pid, f"p{pid}.exe")) for pid in range(4, 4 + 4 * 45, 4)]
    with pytest.raises(SourceError) as raised:
        check_filters(Path("mem.raw"), [99999, 99998], [], opened)
    message = str(raised.value)
    assert message.startswith("--pid 99999 --pid 99998: no such process in mem.raw; it holds 45 processes: 4, 8, ")
    assert message.endswith(", 160 and 5 more")


def test_a_run_with_no_rules_loaded_is_exit_2(fork_image, tmp_path, monkeypatch):
    """The shipped rules gone (as the broken wheel had it): analyze must not report a clean image."""
    from callstack_forensics.cli import common

    monkeypatch.setattr(common, "default_rules_dir", lambda: tmp_path / "no-rules")
    result = CliRunner().invoke(build_app(), ["analyze", str(fork_image), "--symbols", str(symbols(fork_image))])
    assert result.exit_code == 2
    assert "no rules loaded" in result.output and "nothing could be checked" in result.output


# -- streams and one way to print a finding ---------------------------------------------------

def test_analyze_prints_its_tables_on_stdout_and_progress_on_stderr(fork_image, tmp_path):
    done = cli("analyze", fork_image, "--symbols", symbols(fork_image), cache=tmp_path)
    assert done.code == 1
    assert "3 findings" in done.stdout and "process/creation" in done.stdout and "#3 Unbacked" in done.stdout
    assert "━" not in done.stdout and "image" in done.stderr and "findings (" not in done.stderr


def test_detect_prints_findings_as_analyze_does_and_reads_events_from_a_pipe(fork_image, tmp_path):
    events = run("events", fork_image, "--symbols", symbols(fork_image), "--quiet")
    assert events.returncode == 0 and events.stdout
    detect = run("detect", "--events", "-", stdin=events.stdout, COLUMNS="200")
    analyze = run("analyze", fork_image, "--symbols", symbols(fork_image), COLUMNS="200")
    assert detect.returncode == analyze.returncode == 1, detect.stderr
    # the same table, title and rows: severity, rule / events (process/start), process, PID, TID,
    # frames (#3 Unbacked); analyze then goes on with its process table
    assert detect.stdout.startswith("3 findings (") and analyze.stdout.startswith(detect.stdout)


def test_detect_with_an_empty_pipe_is_no_findings_not_an_error():
    done = run("detect", "--events", "-", stdin="")
    assert done.returncode == 0 and done.stdout.startswith("no findings ("), done.stdout + done.stderr


# -- 80 columns --------------------------------------------------------------------------------

def finding(pid: int, tid: int | None, process: str, rule: str, frames: list[MatchedFrame]) -> Finding:
    return Finding("id", rule, "high", "", "", pid, process, tid, event_actions=["process/creation"], frames=frames)


def rendered(renderable, width: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(renderable)
    return out.getvalue().splitlines()


def test_the_findings_table_fits_80_columns_without_crushing_a_column():
    frame = MatchedFrame("process.thread.Ext.call_stack", 3, 6092, 6096, "Unbacked")
    parent = MatchedFrame("process.parent.thread.Ext.call_stack", 5, 3140, 3200,
                          r"c:\windows\system32\ntdll.dll!RtlCloneUserProcess+0x1c2")
    rows = [finding(6092, 6096, "RuntimeBroker.exe", "Call Stack Frame in RWX Memory", [frame, parent]),
            finding(61200, None, "SearchIndexer.exe", "Fork Clone Not Created by Windows Error Reporting", [])]
    lines = rendered(findings_view(rows, "22 rules over 107 events"), 80)
    assert max(map(len, lines)) <= 80
    text = "\n".join(lines)
    for whole in ("RuntimeBroker.exe", "SearchIndexer.exe", "process/creation", "61200", "6096", "#3 Unbacked"):
        assert whole in text, (whole, text)
    header = next(line for line in lines if line.startswith("severity"))
    # every column keeps room for its text: the process column is as wide as "SearchIndexer.exe"
    assert re.search(r"process {5,}PID", header) or "process" in header
    assert "parent #5" in text and "RtlClone" in text.replace("\n", "").replace(" ", "")


def test_the_process_table_fits_80_columns_and_shows_whole_names():
    info = ProcessInfo(5340, "RuntimeBroker.", ppid=812, path=r"C:\Windows\System32\RuntimeBroker.exe")
    analysis = Analysis.__new__(Analysis)
    analysis.processes = [ProcessResult(info, [], walked=True, note="a long note that has to fold into its column")]
    analysis.findings = []
    lines = rendered(process_table(analysis), 80)
    assert max(map(len, lines)) <= 80
    assert any("RuntimeBroker.exe" in line for line in lines)


def test_a_process_name_is_whole_when_the_path_is_known():
    assert display_name("RuntimeBroker.", r"C:\Windows\System32\RuntimeBroker.exe") == "RuntimeBroker.exe"
    assert display_name("smss.exe", r"\SystemRoot\System32\smss.exe") == "smss.exe"
    assert display_name("evil.exe", r"C:\Users\x\other.exe") == "evil.exe"  # the path of something else
    assert display_name("System", None) == "System"


def test_stacks_honours_columns_when_piped_and_folds_threads_without_a_user_context(fork_image):
    done = run("stacks", fork_image, "--symbols", symbols(fork_image), "--pid", "4", "--pid", "6092", COLUMNS="80")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    text = " ".join(line.strip() for line in lines)
    assert ("PID 4 System 24 threads (TID 8, 12, 16, 20, 24, 28, 32, 36 and 16 more): "
            "system thread: no TEB, no user-mode context") in text.replace("System  24", "System 24")
    assert "trust" in done.stdout and "Unbacked" in done.stdout
    assert len(lines) < 60, "System's threads are one line, not a table each"


def test_analyze_at_80_columns_keeps_every_line_within_80(fork_image, tmp_path):
    done = run("analyze", fork_image, "--symbols", symbols(fork_image), COLUMNS="80")
    assert max(len(line) for line in done.stdout.splitlines()) <= 80
    assert "explorer.exe" in done.stdout and "Fork Clone Not" in done.stdout


# -- help and counts ---------------------------------------------------------------------------

@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_what_to_type_not_typers_types(command):
    result = run(*command.split(), "--help", COLUMNS="100")
    assert result.returncode == 0, result.stderr
    assert not re.search(r"<(bool|int|path|list|text|str|float)[^>]*>", result.stdout), result.stdout
    assert "--help" in result.stdout


def test_options_take_plain_metavars():
    result = run("analyze", "--help", COLUMNS="120")
    for shown in ("--rules DIR", "--symbols DIR", "--pid N", "--max-frames N", "--max-stack-bytes N"):
        assert shown in result.stdout, shown


@pytest.mark.parametrize("command", ["analyze", "report", "events", "stacks"])
def test_every_source_command_takes_the_shared_limits(command):
    result = run(command, "--help", COLUMNS="120")
    assert "--max-frames N" in result.stdout and "--max-stack-bytes N" in result.stdout


def test_counts_are_in_words():
    assert [plural(n, "finding") for n in (0, 1, 2)] == ["0 findings", "1 finding", "2 findings"]
    assert [plural(n, "process") for n in (1, 9)] == ["1 process", "9 processes"]
    assert plural(1, "rule file") == "1 rule file" and plural(1, "match") == "1 match"


def test_progress_counts_are_in_words_for_a_one_process_source():
    """A minidump holds one process: its stages say ``1 process``, never ``1 processes``."""
    done = run("analyze", dump_named("breakpad_tiny-exe-fastfail"), COLUMNS="120")
    assert done.returncode == 0, done.stderr
    assert re.search(r"\b1 process\b", done.stderr) and "threads in 1 process\n" in stage_lines(done.stderr)
    assert not re.search(r"\b1 (processes|threads|findings|events|rules)\b", done.stderr), done.stderr


def stage_lines(stderr: str) -> str:
    """The progress lines with the padding rich gives them removed."""
    return "".join(line.rstrip() + "\n" for line in stderr.splitlines())


def test_zero_findings_is_a_line_not_an_empty_table():
    lines = rendered(findings_view([], "22 rules over 40 events"), 80)
    assert lines == ["no findings (22 rules over 40 events)"]


@pytest.mark.parametrize("fixture", sorted((default_rules_dir() / "fixtures").glob("*/positive*"))[:8],
                         ids=lambda p: p.stem)
def test_a_count_of_findings_is_singular_for_one(fixture):
    done = run("detect", "--events", fixture, COLUMNS="120")
    count, noun = re.match(r"(\d+) (findings?) \(", done.stdout).groups()
    assert done.returncode == 1 and noun == ("finding" if count == "1" else "findings")
    assert int(count) == len(run("detect", "--events", fixture, "--json").stdout.splitlines())
