"""Normal minidumps (stacks only) with the module files from ``--modules``: the same frames as the
full dump of the same process and as the live capture's reference; without the files, every
frame in a module says the module is missing.

The modules are the real files Wine loaded: the programs (X:) and the prefix's system32.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from callstack_forensics.engine.context import ProcessContext, WalkOptions
from callstack_forensics.engine.modules import ImageCache
from callstack_forensics.sources import MinidumpSource
from callstack_forensics.engine.walker import walk_thread

from .build import BIN, PROGRAMS
from .capture import CaptureResult
from .known_defects import defect_status, known_defect
from .truth import capture_truth
from .wineprefix import PREFIX

pytestmark = pytest.mark.wine

NAMES = [p.name for p in PROGRAMS]
SYSTEM32 = PREFIX / "drive_c" / "windows" / "system32"
CLI = Path(sys.executable).parent / "callstack-forensics"


def stacks(source: MinidumpSource) -> dict[int, list]:
    (item,) = list(source.processes())
    ctx = ProcessContext(item.memory, WalkOptions(), ImageCache())
    return {t.tid: walk_thread(ctx, t) for t in item.memory.threads()}


def frames(stack) -> list[tuple[int, str]]:
    return [(f.address, f.symbol_info) for f in stack.frames]


@pytest.mark.parametrize("name", NAMES)
def test_normal_dump_with_modules_equals_full_dump_and_live_reference(captures: dict[str, CaptureResult], name):
    capture = captures[name]
    normal = MinidumpSource(capture.directory / "normal.dmp", [BIN, SYSTEM32])
    full = MinidumpSource(capture.directory / "full.dmp")
    assert not normal.dump.holds_module_images() and full.dump.holds_module_images()
    ours, reference = stacks(normal), stacks(full)
    assert set(ours) == set(reference)
    for tid, stack in ours.items():
        assert frames(stack) == frames(reference[tid]), f"{name} tid {tid}"
        assert stack.stop_reason == reference[tid].stop_reason
    for truth in capture_truth(capture.ready, capture.winedbg, capture.breakin_tid):
        reference = [f.address for f in truth.frames]
        defect = known_defect(name, truth.role)
        if defect is not None:  # tests/wine/known_defects.py: wrong exactly where recorded
            assert defect_status(defect, ours[truth.tid].frames, reference) is None, f"{name} {truth.role}"
            continue
        got = [f.address for f in ours[truth.tid].frames]
        assert got[: len(reference)] == reference, f"{name} tid {truth.tid} ({truth.role})"


def test_without_module_files_frames_say_the_module_is_missing(captures):
    source = MinidumpSource(captures["twodll"].directory / "normal.dmp")
    (item,) = list(source.processes())
    assert "--modules DIR" in item.note and "ntdll.dll" in item.note
    in_modules = [f for s in stacks(source).values() for f in s.frames if f.module is not None]
    assert in_modules and all("not in the dump" in (f.note or "") for f in in_modules)


def test_a_file_of_another_build_is_not_used(captures, tmp_path):
    """Same name, other timestamp: unwinding with another build's .pdata would give wrong frames."""
    impostor = tmp_path / "twodll.exe"
    shutil.copy(BIN / "twodll.exe", impostor)
    data = bytearray(impostor.read_bytes())
    pe = int.from_bytes(data[0x3C:0x40], "little")
    data[pe + 8 : pe + 12] = (int.from_bytes(data[pe + 8 : pe + 12], "little") ^ 1).to_bytes(4, "little")
    impostor.write_bytes(bytes(data))
    source = MinidumpSource(captures["twodll"].directory / "normal.dmp", [tmp_path, SYSTEM32])
    (item,) = list(source.processes())
    assert "twodll.exe" in item.note and "timestamp" in item.note
    own = [f for s in stacks(source).values() for f in s.frames if f.module and f.module.name == "twodll.exe"]
    assert own and all("not in the dump" in (f.note or "") for f in own)


def analyze(dump: Path, *extra: str) -> dict:
    run = subprocess.run([str(CLI), "analyze", str(dump), *extra, "--json", "-q"], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode in (0, 1), run.stderr
    return json.loads(run.stdout)


def test_cli_analyze_normal_dump_with_modules_finds_what_the_full_dump_shows(captures):
    """The shellcode's private memory is not in a normal dump: its call site is unknown, so the
    "return address not preceded by a call" rule must not fire there while it stays silent on
    the full dump."""
    directory = captures["shellcode"].directory
    normal = analyze(directory / "normal.dmp", "--modules", str(BIN), "--modules", str(SYSTEM32))
    full = analyze(directory / "full.dmp")
    assert normal["source"]["kind"] == "minidump" and "normal" in normal["source"]["details"]["dump"]
    (process,) = normal["processes"]
    frames = [f for s in process["stacks"] for f in s["frames"]]
    assert any(f["symbol_info"].endswith("ntdll.dll!RtlUserThreadStart+0x88") for f in frames)
    unbacked = [f for f in frames if f["symbol_info"] == "Unbacked"]
    assert unbacked and all(f["call_verified"] is None and not f["callsite_leading_bytes"] for f in unbacked)
    found = sorted((f["rule"]["name"], f["tid"]) for f in normal["findings"])
    assert found and found == sorted((f["rule"]["name"], f["tid"]) for f in full["findings"])
