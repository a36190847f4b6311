"""Scenario files: a typo or an impossible request is an error naming the file, the table and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from callstack_forensics.analysis.fingerprint import sha256_file
from callstack_forensics.forge import FORGE_ERRORS, forge
from callstack_forensics.forge.scenario import ScenarioError, load_scenario

from .conftest import REPO

BASE = '''
expect = []
[[process]]
pid = 4
name = "System"
kernel = true
system_threads = 2
'''

NOTEPAD = '''
[[process]]
pid = 4120
name = "notepad.exe"
session = 1
  [[process.thread]]
  tid = 4124
  stack = ["win32u.dll!NtUserGetMessage", "user32.dll!GetMessageW", "notepad.exe!MessageLoop",
           "notepad.exe!wWinMain", "notepad.exe!wWinMainCRTStartup", "kernel32.dll!BaseThreadInitThunk",
           "ntdll.dll!RtlUserThreadStart"]
'''


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "case.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    (BASE.replace("expect = []", ""), r"missing required key 'expect'"),
    (BASE + NOTEPAD.replace("session = 1", "sesion = 1"), r"process\[1\] \(notepad.exe\): unknown key 'sesion' "
                                                          r"\(did you mean 'session'\?\)"),
    (BASE + NOTEPAD.replace("pid = 4120", "pid = 4121"), r"4121 is not a Windows process id"),
    (BASE + NOTEPAD.replace("tid = 4124", "tid = 4120"), r"tid 4120 is also a process id"),
    (BASE + NOTEPAD.replace("tid = 4124", 'tid = "x"'), r"thread\[0\]\.tid: expected an integer"),
    (BASE + NOTEPAD + '  [[process.region]]\n  name = "r"\n  size = 0x1234\n', r"region\[0\] \(r\)\.size: 0x1234"),
    (BASE + NOTEPAD + '  [[process.region]]\n  name = "r"\n  size = 0x1000\n  protection = "RXW"\n',
     r"unknown protection 'RXW'"),
    (BASE + NOTEPAD + '  [[process.region]]\n  name = "r"\n  size = 0x1000\n  kind = "mapped"\n',
     r"a mapped region needs `file`"),
    (BASE + NOTEPAD.replace("stack = [", 'like = "gui"\n  stack = ['), r"no template 'gui'"),
    ("expect = [\n", r"not valid TOML"),
])
def test_malformed_scenarios_name_the_problem(tmp_path, text, message):
    with pytest.raises(ScenarioError, match=message):
        load_scenario(write(tmp_path, text))


@pytest.mark.parametrize("text, message", [
    (BASE + NOTEPAD.replace('"notepad.exe!wWinMain"', '"notepad.exe!wWinMian"'),
     r"frame 3 'notepad.exe!wWinMian': notepad.exe has no function wWinMian"),
    (BASE + NOTEPAD.replace('"notepad.exe!MessageLoop",\n           ', ''),
     r"notepad.exe!wWinMain never calls user32.dll!GetMessageW \(it calls: notepad.exe!MessageLoop\)"),
    (BASE + NOTEPAD.replace('name = "notepad.exe"', 'name = "evil.exe"'), r"no x64 executable 'evil.exe'"),
    (BASE + NOTEPAD.replace('"user32.dll!GetMessageW"', '"shellcode"'), r"no module or region named 'shellcode'"),
    (BASE + NOTEPAD.replace('session = 1', 'session = 1\nmodules = ["ntdll.dll", "nosuch.dll"]'),
     r"no x64 module 'nosuch.dll'"),
])
def test_impossible_images_are_refused_with_the_reason(tmp_path, text, message):
    with pytest.raises(FORGE_ERRORS, match=message):
        forge(write(tmp_path, text), tmp_path / "out" / "x.raw")


def test_every_shipped_scenario_loads_and_names_known_rules():
    rule_names = set()
    for rule in (REPO / "rules").glob("*.toml"):
        import tomllib

        data = tomllib.loads(rule.read_text())
        if "rule" in data:
            rule_names.add(data["rule"]["name"])
    scenarios = sorted((REPO / "samples" / "scenarios").glob("*.toml"))
    assert len(scenarios) >= 27
    for path in scenarios:
        scenario = load_scenario(path)
        if rule_names:
            assert set(scenario.expect) <= rule_names, (path.name, set(scenario.expect) - rule_names)


def test_same_scenario_same_image(tmp_path):
    scenario = REPO / "samples" / "scenarios" / "direct_syscall.toml"
    first = forge(scenario, tmp_path / "a" / "x.raw")
    second = forge(scenario, tmp_path / "b" / "x.raw")
    # 4 GiB each (sparse): hashed in chunks, not read into memory
    assert sha256_file(first.image) == sha256_file(second.image)
    assert first.symbols.read_bytes() == second.symbols.read_bytes()


def test_forge_command_line(tmp_path):
    from typer.testing import CliRunner

    from callstack_forensics.cli.app import build_app

    runner = CliRunner()
    scenario = REPO / "samples" / "scenarios" / "wow64_injected_thread.toml"
    ok = runner.invoke(build_app(), ["forge", str(scenario), "-o", str(tmp_path / "w.raw")])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "w.raw").stat().st_size > 0
    assert list((tmp_path / "symbols" / "windows" / "ntkrnlmp.pdb").glob("*.json.xz"))
    bad = runner.invoke(build_app(), ["forge", str(tmp_path / "missing.toml"), "-o", str(tmp_path / "x.raw")])
    assert bad.exit_code == 2 and "cannot read" in bad.output
    small = runner.invoke(build_app(), ["forge", str(scenario), "-o", str(tmp_path / "s.raw"), "--ram", "96M"])
    assert small.exit_code == 0 and (tmp_path / "s.raw").stat().st_size == 96 << 20, small.output
    for ram, says in (("lots", "not a RAM size"), ("16M", "outside 64 MiB"), ("65M", "multiple of 2 MiB")):
        wrong = runner.invoke(build_app(), ["forge", str(scenario), "-o", str(tmp_path / "r.raw"), "--ram", ram])
        assert wrong.exit_code == 2 and says in wrong.output, (ram, wrong.output)


def test_paged_out_pages_are_not_present_but_the_rest_is(tmp_path):
    from callstack_forensics.forge.paging import AddressSpace

    text = BASE + NOTEPAD + '''  [[process.region]]
  name = "data"
  size = 0x3000
  address = 0x5000000
  content = { text = "page0" }
  paged_out = [0x1000]
'''
    text = text.replace('content = { text = "page0" }', 'content = { hex = "' + "41" * 0x2010 + '" }')
    result = forge(write(tmp_path, text), tmp_path / "out" / "x.raw")
    plan = result.process(4120)
    space = AddressSpace.attach(result.machine.phys, result.machine.kernel_half, plan.dtb)
    assert space.translate(0x5000000) is not None
    assert space.translate(0x5001000) is None          # in the page file: not present
    assert space.translate(0x5002000) is not None
    vad = next(v for v in plan.vads if v.label == "data")
    assert (vad.start, vad.end, vad.commit_pages) == (0x5000000, 0x5002FFF, 2)


def test_signing_levels_come_from_the_catalog_unless_the_scenario_says(tmp_path):
    text = BASE + NOTEPAD + '''  [[process.module]]
  name = "k32hook.dll"
  [[process.module]]
  name = "ole32.dll"
  signing_level = 4
'''
    plan = forge(write(tmp_path, text), tmp_path / "out" / "x.raw").process(4120)
    levels = {m.path.rsplit("\\", 1)[-1].lower(): m.signing_level for m in plan.modules}
    assert plan.signature_level == 12 and levels["notepad.exe"] == 12 and levels["ntdll.dll"] == 12
    assert levels["k32hook.dll"] == 1 and levels["ole32.dll"] == 4
