"""`make rule-coverage`'s script on one bundled scenario and rules written in Elastic's style."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .corpus import StyledRule, write_corpus

REPO = Path(__file__).resolve().parents[2]

RULES = [
    StyledRule("Api From Unbacked", 'api where process.Ext.api.name : "VirtualProtect" and '
               'process.Ext.api.behaviors == "native_api" and process.Ext.api.parameters.size > 0'),
    StyledRule("Image Original Name", 'process where event.action == "start" and process.pe.original_file_name : "notepad.exe" '
               'and process.Ext.token.integrity_level_name == "medium" and process.args_count >= 1'),
    StyledRule("Hashed Image", 'library where dll.hash.sha256 != null and dll.code_signature.subject_name : "*"'),
    StyledRule("Dns Query", 'dns where dns.question.name : "*.example"'),
]


def test_the_script_counts_rules_with_and_without_files(tmp_path):
    tree = write_corpus(tmp_path, RULES)
    usage = tmp_path / "usage.md"
    usage.write_text("| rules | field |\n|---|---|\n| 9 | `process.hash.sha256` |\n| 3 | `dns.question.name` |\n")
    done = subprocess.run([sys.executable, str(REPO / "samples" / "rule_coverage.py"), str(tree), "--scenarios",
                           "shellcode_protect", "--out", str(tmp_path / "out"), "--field-usage", str(usage)],
                          capture_output=True, text=True, timeout=900, cwd=REPO)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "windows rules: 4 (of 4 loaded, 0 files failed)" in out
    assert "memory image alone           2 / 4" in out  # the API rule and the image-name rule
    assert "with --files                 3 / 4" in out  # + the hashed, signed module
    assert "1     0  dns.question.name" in out  # its class is missing too and "event classes we never emit: dns (1 rules)" in out
    assert "memory image alone       holds   0 / 2 fields" in out and "with --files             holds   1 / 2 fields" in out
