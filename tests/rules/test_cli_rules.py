"""`rules check` and `detect`: output, exit codes (0 clean, 1 findings, 2 usage/input error)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from callstack_forensics.cli.app import build_app
from callstack_forensics.rules import default_rules_dir

FIXTURES = default_rules_dir() / "fixtures"
EXE = Path(sys.executable).parent / "callstack-forensics"
WIDE = {"COLUMNS": "250"}


def invoke(*args):
    return CliRunner().invoke(build_app(), list(args), env=WIDE)


def bad_rules_dir(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "good.toml").write_text('[rule]\nid = "g"\nname = "g"\nquery = \'\'\'\nprocess where true\n\'\'\'\n')
    (tmp_path / "bad.toml").write_text(
        '[rule]\nid = "b"\nname = "b"\nquery = \'\'\'\nprocess where\n  x ==== 1\n\'\'\'\n')
    return tmp_path


def shipped_rule_count() -> int:
    """The rule files shipped in rules/ (fixtures and YARA aside), counted independently of the loader."""
    return sum(1 for p in default_rules_dir().glob("*.toml"))


def test_rules_check_passes_on_the_shipped_rules():
    result = invoke("rules", "check")
    assert result.exit_code == 0, result.output
    assert f"{shipped_rule_count()} rules parsed, 0 failures" in result.output


def test_rules_check_lists_failures_with_file_line_column(tmp_path):
    result = invoke("rules", "check", str(bad_rules_dir(tmp_path)))
    assert result.exit_code == 2
    row = next(line for line in result.output.splitlines() if "bad.toml" in line)
    cells = [c.strip() for c in row.split("│") if c.strip()]
    assert cells[1:3] == ["6", "7"]  # the second "==" of "  x ==== 1"
    assert "1 rule file failed, 1 rule parsed" in result.output


def test_rules_check_several_directories(tmp_path):
    result = invoke("rules", "check", str(default_rules_dir()), str(bad_rules_dir(tmp_path)))
    assert result.exit_code == 2 and f"{shipped_rule_count() + 1} rules parsed" in result.output


def test_rules_check_missing_directory(tmp_path):
    result = invoke("rules", "check", str(tmp_path / "nowhere"))
    assert result.exit_code == 2 and "no such file" in result.output


def test_detect_json_reports_matches_and_exits_1():
    path = FIXTURES / "defense_evasion_process_reflection_descendant" / "positive_dirty_vanity_explorer_fork_spawns_cmd.ndjson"
    result = invoke("detect", "--events", str(path), "--json")
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    names = {m["rule"]["name"] for m in lines}
    assert "Process Started by a Forked (Reflected) Process" in names
    hit = next(m for m in lines if m["rule"]["name"] == "Process Started by a Forked (Reflected) Process")
    assert hit["events"][0]["process"]["name"] == "cmd.exe"


def test_detect_table_output():
    path = FIXTURES / "defense_evasion_library_load_via_rop_gadgets" / "positive_atomldr_rop_through_win32u.ndjson"
    result = invoke("detect", "--events", str(path))
    assert result.exit_code == 1
    assert "Potential Library Load via ROP Gadgets" in result.stdout
    assert "updchk.exe" in result.stdout and "6310" in result.stdout


def test_detect_no_match_exits_0():
    path = FIXTURES / "defense_evasion_process_reflection_descendant" / "negative_explorer_spawns_cmd_normally.ndjson"
    result = invoke("detect", "--events", str(path))
    assert result.exit_code == 0
    assert "no findings (" in result.stdout
    assert invoke("detect", "--events", str(path), "--json").stdout == ""


def test_detect_with_a_rules_option(tmp_path):
    (tmp_path / "r.toml").write_text('[rule]\nid = "r"\nname = "Any cmd"\nquery = \'process where process.name : "cmd.exe"\'\n')
    events = tmp_path / "e.ndjson"
    events.write_text('{"event": {"category": "process"}, "process": {"name": "CMD.EXE"}}\n\n'
                      '{"event": {"category": "file"}, "process": {"name": "cmd.exe"}}\n')
    result = invoke("detect", "--events", str(events), "--rules", str(tmp_path), "--json")
    assert result.exit_code == 1
    assert [json.loads(line)["rule"]["name"] for line in result.stdout.splitlines()] == ["Any cmd"]


def test_detect_reads_a_json_array(tmp_path):
    events = tmp_path / "e.json"
    events.write_text(json.dumps([{"event": {"category": "process"}, "process": {"name": "x"}}]))
    assert invoke("detect", "--events", str(events)).exit_code == 0


def test_detect_malformed_line_names_the_line(tmp_path):
    events = tmp_path / "e.ndjson"
    events.write_text('{"event": {}}\n{"event": \n')
    result = invoke("detect", "--events", str(events))
    assert result.exit_code == 2
    assert "e.ndjson:2" in result.output


def test_detect_non_object_line(tmp_path):
    events = tmp_path / "e.ndjson"
    events.write_text('{"a": 1}\n42\n')
    result = invoke("detect", "--events", str(events))
    assert result.exit_code == 2 and "e.ndjson:2" in result.output and "JSON object" in result.output


def test_detect_unreadable_file(tmp_path):
    result = invoke("detect", "--events", str(tmp_path / "missing.ndjson"))
    assert result.exit_code == 2 and "cannot read" in result.output


def test_detect_without_events_option_is_a_usage_error():
    assert invoke("detect").exit_code == 2


def test_detect_continues_past_broken_rules_unless_strict(tmp_path):
    rules = bad_rules_dir(tmp_path / "rules")
    events = tmp_path / "e.ndjson"
    events.write_text('{"event": {"category": "process"}}\n')
    lenient = invoke("detect", "--events", str(events), "--rules", str(rules))
    assert lenient.exit_code == 1 and "bad.toml" in lenient.output
    strict = invoke("detect", "--events", str(events), "--rules", str(rules), "--strict")
    assert strict.exit_code == 2


# ---- the seed's examples, end to end ------------------------------------------------------------

SEED_CASES = [
    ("defense_evasion_process_reflection_descendant", "positive_dirty_vanity_explorer_fork_spawns_cmd", "cmd.exe"),
    ("defense_evasion_forked_process_network_or_library", "positive_fork_loads_ws2_32", "explorer.exe"),
    ("execution_direct_syscall_process_creation", "positive_direct_syscall_stub_in_pe", "notepad.exe"),
    ("initial_access_office_ole_object_drops_executable", "positive_winword_embedded_object_drops_exe", "WINWORD.EXE"),
    ("impact_document_rename_from_unbacked_memory", "positive_knight_rename_in_explorer", "explorer.exe"),
    ("persistence_executable_written_by_service_dll", "positive_service_dll_writes_exe", "svchost.exe"),
    ("persistence_unsigned_print_monitor_load", "positive_spooler_loads_unsigned_monitor", "spoolsv.exe"),
    ("defense_evasion_library_load_via_rop_gadgets", "positive_atomldr_rop_through_win32u", "updchk.exe"),
    ("defense_evasion_ldrpkernel32_override", "positive_rogue_bootstrap_dll", "target.exe"),
    ("lateral_movement_remote_registry_modification", "positive_run_key_set_remotely", "svchost.exe"),
    ("persistence_wmi_event_consumer_process", "positive_commandline_event_consumer", "notepad.exe"),
    ("execution_scheduled_task_process", "positive_task_runs_powershell", "powershell.exe"),
    ("execution_script_from_zip_archive", "positive_wscript_from_zip", "wscript.exe"),
]


@pytest.mark.parametrize("stem,fixture,process", SEED_CASES, ids=[c[0] for c in SEED_CASES])
def test_detect_reproduces_the_seed_rule(stem, fixture, process):
    rule_file = default_rules_dir() / f"{stem}.toml"
    result = invoke("detect", "--events", str(FIXTURES / stem / f"{fixture}.ndjson"), "--rules", str(rule_file), "--no-shipped-rules", "--json")
    assert result.exit_code == 1
    matches = [json.loads(line) for line in result.stdout.splitlines()]
    assert matches and all(m["rule"]["path"].endswith(f"{stem}.toml") for m in matches)
    assert matches[0]["events"][-1]["process"]["name"] == process


def test_knight_rename_flags_every_encrypted_document():
    stem = "impact_document_rename_from_unbacked_memory"
    result = invoke("detect", "--events", str(FIXTURES / stem / "positive_knight_rename_in_explorer.ndjson"),
                    "--rules", str(default_rules_dir() / f"{stem}.toml"), "--no-shipped-rules", "--json")
    originals = [json.loads(l)["events"][0]["file"]["Ext"]["original"]["name"] for l in result.stdout.splitlines()]
    assert originals == ["Q1 results.xlsx", "family.jpg"]


def test_dirty_vanity_points_at_the_reflection_frame():
    stem = "defense_evasion_fork_clone_not_werfault"
    result = invoke("detect", "--events", str(FIXTURES / stem / "positive_reflection_frames_without_clone_flag.ndjson"),
                    "--rules", str(default_rules_dir() / f"{stem}.toml"), "--no-shipped-rules", "--json")
    (match,) = [json.loads(line) for line in result.stdout.splitlines()]
    (frame,) = match["matched_frames"]
    stack = match["events"][0]["process"]["parent"]["thread"]["Ext"]["call_stack"]
    assert frame["field"] == "process.parent.thread.Ext.call_stack"
    assert "RtlCloneUserProcess" in stack[frame["index"]]["symbol_info"]


# ---- the installed console script -------------------------------------------------------------------

def test_console_script_rules_check():
    out = subprocess.run([str(EXE), "rules", "check"], capture_output=True, text=True)
    assert out.returncode == 0 and f"{shipped_rule_count()} rules parsed" in out.stdout


def test_console_script_rules_check_failure(tmp_path):
    out = subprocess.run([str(EXE), "rules", "check", str(bad_rules_dir(tmp_path))], capture_output=True, text=True,
                         env={"COLUMNS": "250", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2 and "bad.toml" in out.stderr


def test_console_script_detect_exit_codes(tmp_path):
    positive = FIXTURES / "execution_direct_syscall_process_creation" / "positive_direct_syscall_stub_in_pe.ndjson"
    out = subprocess.run([str(EXE), "detect", "--events", str(positive), "--json"], capture_output=True, text=True)
    assert out.returncode == 1
    assert "Process Creation via Direct Syscall" in {json.loads(l)["rule"]["name"] for l in out.stdout.splitlines()}
    bad = tmp_path / "bad.ndjson"
    bad.write_text("not json\n")
    out = subprocess.run([str(EXE), "detect", "--events", str(bad)], capture_output=True, text=True)
    assert out.returncode == 2 and "bad.ndjson:1" in out.stderr


def test_missing_default_rules_directory_is_a_clear_usage_error(tmp_path, monkeypatch):
    import callstack_forensics.cli.rules_cmd as rules_cmd

    monkeypatch.setattr(rules_cmd, "default_rules_dir", lambda: tmp_path / "gone")
    for args in (["rules", "check"], ["detect", "--events", str(tmp_path / "e.ndjson")]):
        result = invoke(*args)
        assert result.exit_code == 2
        assert "no rules directory given" in result.output and "gone" in result.output


def test_default_rules_directory_is_the_repository_rules_folder():
    assert (default_rules_dir() / "defense_evasion_process_reflection_descendant.toml").is_file()
