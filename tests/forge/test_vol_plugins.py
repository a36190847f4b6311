"""Stock Volatility on forged images shows exactly what the scenario files say.

Every scenario is built on the default layout (the shipped Windows 10 22H2 table) and read by
the real `vol` CLI (`-r json`, in a subprocess) with windows.info/pslist/pstree/threads/vadinfo/
dlllist/cmdline/malfind; the core scenarios are also built and read on each of the other real
kernel ISFs. FORGE_FULL_MATRIX=1 runs every scenario on every ISF.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from callstack_forensics.forge.default_layout import default_isf_path
from callstack_forensics.forge.scenario import load_scenario

from .conftest import REPO, real_isfs
from .expectations import Expected
from .volrun import ImageCache, flatten

SCENARIOS = sorted((REPO / "samples" / "scenarios").glob("*.toml"))
# Every real ISF reads the benign desktop (the most structures); the WOW64 and fork scenarios are read
# on one build per VAD/WOW64 generation (Windows 7, 8.1, 10 22H2, 11); FORGE_FULL_MATRIX=1 runs all.
ON_EVERY_ISF = {"benign_desktop"}
ON_SOME_ISFS = {"wow64_injected_thread", "dirty_vanity_fork"}
SOME_ISFS = {"339E7413", "C78AB9DB", "606FF669", "0CE4A95C"}


def _images() -> list:
    params = [pytest.param((s, None), id=f"{s.stem}-default") for s in SCENARIOS]
    full = os.environ.get("FORGE_FULL_MATRIX") == "1"
    for isf in real_isfs():
        if isf.name == default_isf_path().name:
            continue  # the default layout: every scenario is read on it above
        for scenario in SCENARIOS:
            wanted = scenario.stem in ON_EVERY_ISF or (scenario.stem in ON_SOME_ISFS and isf.name[:8] in SOME_ISFS)
            if full or wanted:
                params.append(pytest.param((scenario, isf), id=f"{scenario.stem}-{isf.name[:8]}"))
    return params


@pytest.fixture(scope="session")
def images():
    # Not under pytest's basetemp: concurrent pytest sessions of other users of this tree rotate it away.
    root = Path(tempfile.mkdtemp(prefix="forge-tests-"))
    cache = ImageCache(root)
    yield cache
    cache.close()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=_images())
def forged(request, images):
    scenario_path, isf = request.param
    forged = images.get(scenario_path, isf)
    return forged, Expected(load_scenario(scenario_path), forged.result)


def _rows(forged, plugin: str) -> list[dict]:
    out = forged.run(plugin)
    assert out.returncode == 0, f"vol windows.{plugin} failed:\n{out.stderr[-3000:]}"
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    return flatten(out.rows)


def test_image_size(forged):
    """A machine's worth of RAM (the default 4 GiB), of which only the pages in use take disk."""
    image, _ = forged
    assert image.result.image_size == 4 << 30
    assert image.result.image.stat().st_size == image.result.image_size
    assert image.result.image.stat().st_blocks * 512 <= 64 << 20


def test_info(forged):
    image, expected = forged
    rows = {r["Variable"]: r["Value"] for r in _rows(image, "info")}
    result, version = image.result, None
    from callstack_forensics.forge.builds import windows_version
    from callstack_forensics.forge.layout import Layout

    layout = Layout.load(result.symbols)
    version = windows_version(layout)
    assert rows["Symbols"].endswith(f"{result.layout_identifier}.json.xz")
    assert rows["Is64Bit"] == "True"
    assert rows["DTB"] == "0x1ad000"
    assert rows["KeNumberProcessors"] == str(expected.scenario.processors)
    assert rows["NtMajorVersion"] == str(version.major) and rows["NtMinorVersion"] == str(version.minor)
    assert rows["Major/Minor"] == f"15.{version.build}"
    assert rows["SystemTime"] == str(expected.scenario.time)
    assert rows["NTBuildLab"].startswith(f"{version.build}.")
    assert rows["PE Machine"] == "34404"


def test_pslist(forged):
    image, expected = forged
    got = {(r["PID"], r["PPID"], r["ImageFileName"], r["Threads"], r["SessionId"], r["Wow64"], r["CreateTime"])
           for r in _rows(image, "pslist")}
    assert got == expected.pslist_rows()


def test_pstree(forged):
    image, expected = forged
    rows = {r["PID"]: r for r in _rows(image, "pstree")}
    assert set(rows) == {p.pid for p in expected.scenario.processes}
    for spec in expected.scenario.processes:
        row = rows[spec.pid]
        assert row["Cmd"] == expected.command_line(spec), spec.name
        path = expected.image_path(spec)
        assert row["Path"] == path, spec.name
        if path:
            assert row["Audit"] == "\\Device\\HarddiskVolume3" + path[2:], spec.name


def test_threads(forged):
    image, expected = forged
    rows = _rows(image, "threads")
    assert {(r["PID"], r["TID"]) for r in rows} == expected.tids()
    for row in rows:
        spec = expected.spec(row["PID"])
        if spec.kernel:
            continue
        plan = next(t for t in expected.plan(spec.pid).threads if t.tid == row["TID"])
        assert row["Win32StartAddress"] == plan.win32_start_address
        assert row["StartPath"] and row["StartPath"].lower().endswith("\\ntdll.dll")


def test_vadinfo(forged):
    image, expected = forged
    rows = _rows(image, "vadinfo")
    for spec in expected.scenario.processes:
        mine = [r for r in rows if r["PID"] == spec.pid]
        if spec.kernel:  # the kernel's processes have an address space too: KUSER_SHARED_DATA under one VAD
            assert {(r["Start VPN"], r["End VPN"]) for r in mine} == \
                {(v.start, v.end) for v in expected.plan(spec.pid).vads}, spec.name
            continue
        got = {(r["Start VPN"], r["End VPN"], r["Protection"], r["PrivateMemory"], r["File"]) for r in mine}
        missing = (expected.region_rows(spec) | expected.module_rows(spec)) - got
        assert not missing, f"{spec.name}: {missing}"
        assert len(mine) == expected.vad_count(spec)
        assert all(r["Tag"] == ("VadS" if r["PrivateMemory"] else "Vad ") for r in mine)


def test_dlllist(forged):
    image, expected = forged
    rows = _rows(image, "dlllist")
    for spec in expected.scenario.processes:
        got = [(r["Base"], r["Size"], r["Name"], r["Path"]) for r in rows if r["PID"] == spec.pid]
        assert got == expected.dll_rows(spec), spec.name
        names = {g[2].lower() for g in got}
        assert expected.scenario_modules(spec) <= names, spec.name


def test_cmdline(forged):
    image, expected = forged
    rows = {r["PID"]: r["Args"] for r in _rows(image, "cmdline")}
    for spec in expected.scenario.processes:
        assert rows[spec.pid] == expected.command_line(spec), spec.name


def test_malfind(forged):
    image, expected = forged
    got = {(r["PID"], r["Start VPN"]) for r in _rows(image, "malfind")}
    want = {(s.pid, start) for s in expected.scenario.processes if not s.kernel
            for start in expected.malfind_starts(s)}
    assert got == want


def test_handles_name_what_blocked_system_calls_act_on(forged):
    """windows.handles resolves the evidence handles (files, keys, image sections) of the scenario's `args`."""
    image, expected = forged
    rows = _rows(image, "handles")
    for spec in expected.scenario.processes:
        plan = expected.plan(spec.pid)
        mine = {r["HandleValue"]: r for r in rows if r["PID"] == spec.pid}
        for handle in plan.handle_entries:
            row = mine.get(handle.value)
            assert row is not None, (spec.name, hex(handle.value), handle.name)
            if handle.kind == "file":
                assert row["Type"] == "File" and row["Name"] == "\\Device\\HarddiskVolume3" + handle.name
            elif handle.kind == "key":
                assert row["Type"] == "Key" and "\\REGISTRY\\" + row["Name"] == handle.name
            else:
                assert row["Type"] == "Section"
            assert row["GrantedAccess"] == handle.access
