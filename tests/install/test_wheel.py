"""`pip install` of a built wheel works away from the checkout: rules, images, minidumps and `vol`.

The wheel must carry the shipped rules, the YARA rules and the Volatility plugin folder; an
installed copy must find them without a repository around it, and give the findings the
checkout gives.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO, Installed

CHECKOUT_CLI = str(Path(sys.executable).parent / "callstack-forensics")
WARNINGS = ("Deprecat", "BuildBackendWarning", "SetuptoolsWarning", "is absent from the `packages`")


def findings_of(analysis: dict) -> list[tuple]:
    """What makes a finding, without the paths that differ between the two copies."""
    return sorted((f["rule"]["id"], f["pid"], f["tid"], tuple(fr["symbol_info"] for fr in f["frames"]), tuple(f["events"]))
                  for f in analysis["findings"])


def checkout_analysis(*args: str) -> dict:
    done = subprocess.run([CHECKOUT_CLI, "analyze", *args, "--json", "--quiet"], capture_output=True, text=True, timeout=900)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def test_the_wheel_builds_without_setuptools_warnings(installed: Installed):
    assert not [w for w in WARNINGS if w in installed.build_log], installed.build_log[-4000:]


def test_the_wheel_holds_every_module_the_rules_the_plugins_and_the_forges_samples(installed: Installed, source_tree: Path):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    wanted = {str(p.relative_to(source_tree)) for p in (source_tree / "callstack_forensics").rglob("*")
              if p.suffix in (".py", ".j2", ".lark")}
    wanted |= {f"callstack_forensics/rules/shipped/{p.relative_to(source_tree / 'rules')}"
               for p in (source_tree / "rules").rglob("*") if p.suffix in (".toml", ".yar") and "fixtures" not in p.parts}
    wanted |= {f"callstack_forensics/volatility/plugins/{p.relative_to(source_tree / 'plugins')}"
               for p in (source_tree / "plugins").rglob("*.py")}
    modules = source_tree / "samples" / "modules"
    wanted |= {f"callstack_forensics/forge/shipped_modules/{p.relative_to(modules)}"
               for p in [modules / "catalog.json", *(modules / "bin").rglob("*.*")]}
    wanted |= {f"callstack_forensics/forge/shipped_bases/{p.name}"
               for p in (source_tree / "samples" / "scenarios" / "base").glob("*.toml")}
    assert wanted - names == set()
    assert not [n for n in names if "/fixtures/" in n], "rule fixtures are test data"


def test_rules_check_runs_the_shipped_rules_outside_the_checkout(installed: Installed):
    done = installed.run("callstack-forensics", "rules", "check")
    shipped = len(list((REPO / "rules").glob("*.toml")))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{shipped} rules parsed, 0 failures"


def test_plugins_path_is_the_installed_plugin_folder(installed: Installed):
    done = installed.run("callstack-forensics", "plugins-path")
    folder = Path(done.stdout.strip())
    assert done.returncode == 0 and folder.is_relative_to(installed.venv), done.stdout + done.stderr
    assert sorted(p.name for p in (folder / "callstacks").glob("*.py")) == ["__init__.py", "detect.py", "events.py",
                                                                            "stacks.py"]


@pytest.fixture(scope="module")
def forged(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("forged") / "dirty_vanity.raw"
    subprocess.run([CHECKOUT_CLI, "forge", str(REPO / "samples" / "scenarios" / "dirty_vanity_fork.toml"), "-o", str(out)],
                   check=True, capture_output=True, timeout=600)
    return out


@pytest.fixture(scope="module")
def checkout_findings(forged: Path) -> list[tuple]:
    return findings_of(checkout_analysis(str(forged), "--symbols", str(forged.parent / "symbols")))


def test_analyze_on_a_forged_image_gives_the_checkouts_findings(installed: Installed, forged: Path, checkout_findings):
    symbols = str(forged.parent / "symbols")
    done = installed.run("callstack-forensics", "analyze", str(forged), "--symbols", symbols, "--json", "--quiet")
    assert done.returncode == 1, done.stderr
    ours = json.loads(done.stdout)
    assert len(ours["rules"]["loaded"]) == len(list((REPO / "rules").glob("*.toml")))
    assert findings_of(ours) == checkout_findings
    assert findings_of(ours)


def test_forge_runs_from_the_installed_copy_with_its_own_modules_and_base_system(installed: Installed,
                                                                                checkout_findings):
    """The scenario alone, without the checkout's samples/ around it: the module catalog and the
    base system come from the installed package (an installed forge used to find no catalog)."""
    scenario = installed.elsewhere / "dirty_vanity_fork.toml"
    scenario.write_bytes((REPO / "samples" / "scenarios" / "dirty_vanity_fork.toml").read_bytes())
    image = installed.elsewhere / "forged" / "dirty_vanity.raw"
    image.parent.mkdir()
    done = installed.run("callstack-forensics", "forge", str(scenario), "-o", str(image))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "16 processes, 78 threads" in done.stdout  # the scenario's three and the base system's thirteen
    analysed = installed.run("callstack-forensics", "analyze", str(image), "--symbols", str(image.parent / "symbols"),
                             "--json", "--quiet")
    assert analysed.returncode == 1, analysed.stderr
    assert findings_of(json.loads(analysed.stdout)) == checkout_findings


def test_analyze_on_a_minidump_gives_the_checkouts_findings(installed: Installed, captures):
    dump = captures["shellcode"].dump
    done = installed.run("callstack-forensics", "analyze", str(dump), "--json", "--quiet")
    assert done.returncode == 1, done.stderr
    ours = json.loads(done.stdout)
    assert findings_of(ours) and findings_of(ours) == findings_of(checkout_analysis(str(dump)))


def test_vol_runs_the_installed_plugins(installed: Installed, forged: Path):
    folder = installed.run("callstack-forensics", "plugins-path").stdout.strip()
    done = installed.run("vol", "-q", "--offline", "-r", "json", "-p", folder, "-s", str(forged.parent / "symbols"),
                         "-f", str(forged), "callstacks.detect")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout)
    analysis = checkout_analysis(str(forged), "--symbols", str(forged.parent / "symbols"))
    assert sorted((r["RuleId"], r["PID"], r["TID"]) for r in rows) == \
        sorted((f["rule"]["id"], f["pid"], f["tid"]) for f in analysis["findings"])
