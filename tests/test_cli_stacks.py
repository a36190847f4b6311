"""The `stacks` command's input errors: exit code 2 and a message a person can act on."""

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from callstack_forensics.cli.app import build_app


def test_neither_minidump_nor_memory_image_is_a_usage_error_naming_the_file(tmp_path: Path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 64)
    result = CliRunner().invoke(build_app(), ["stacks", str(junk)])
    assert result.exit_code == 2
    assert "junk.bin" in result.output and "not a Windows memory image" in result.output


def test_missing_and_empty_files_exit_2(tmp_path: Path):
    empty = tmp_path / "empty.dmp"
    empty.write_bytes(b"")
    for path, words in ((tmp_path / "nope.dmp", "no such file"), (empty, "empty file")):
        result = CliRunner().invoke(build_app(), ["stacks", str(path)])
        assert result.exit_code == 2 and words in result.output


def test_console_script_is_installed_and_reports_its_version():
    exe = Path(sys.executable).parent / "callstack-forensics"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == __import__("callstack_forensics").__version__
