"""Implant state the forge writes (forge/implants.py) reads back through the Volatility adapter on
every real kernel layout: debug registers, user APC queues, file objects, private image pages."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from callstack_forensics.forge import forge
from callstack_forensics.forge.scenario import ScenarioError, load_scenario
from callstack_forensics.memory import RegionKind
from callstack_forensics.volatility.session import VolatilitySettings, open_image

from .conftest import real_isfs

SCENARIO = textwrap.dedent('''
    title = "every implant key at once"
    expect = []
    [system]
    base = "none"
    [[process]]
    pid = 4
    name = "System"
    kernel = true
    system_threads = 2
    [[process]]
    pid = 7100
    ppid = 4
    name = "powershell.exe"
    session = 1
    modules = ["ntdll.dll", "kernel32.dll", "kernelbase.dll", "amsi.dll"]
      [[process.module]]
      name = "amsi.dll"
      patches = [{ export = "AmsiScanBuffer", hex = "b857000780c3" }]
      [[process.module]]
      name = "ole32.dll"
      file_transacted = true
      [[process.module]]
      name = "wbemcons.dll"
      file_deleted = true
      [[process.module]]
      name = "zipfld.dll"
      mapped_file = 'C:\\Users\\Public\\payload.dll'
      [[process.region]]
      name = "shellcode"
      size = 0x2000
      protection = "RWX"
      content = "fc4883e4f0"
      [[process.region]]
      name = "beacon"
      size = 0x10000
      protection = "R-X"
      pe = "beacon.dll"
      pe_header = false
      [[process.thread]]
      tid = 7104
      stack = ["ntdll.dll!NtWaitForSingleObject", "kernelbase.dll!WaitForSingleObjectEx", "powershell.exe!wmain",
               "powershell.exe!wmainCRTStartup", "kernel32.dll!BaseThreadInitThunk", "ntdll.dll!RtlUserThreadStart"]
      breakpoints = [{ address = "amsi.dll!AmsiScanBuffer" }, { address = "shellcode+0x40", condition = "write", length = 8, scope = "global" }]
      alertable = true
      apcs = [{ routine = "shellcode" }, { routine = "shellcode+0x20", via = "QueueUserAPC", argument = 7 }]
      [[process.thread]]
      tid = 7108
      stack = ["ntdll.dll!NtWaitForWorkViaWorkerFactory", "ntdll.dll!TppWorkerThread", "kernel32.dll!BaseThreadInitThunk",
               "ntdll.dll!RtlUserThreadStart"]
      breakpoints = [{ address = "amsi.dll!AmsiScanBuffer" }]
      debug_active = false
''')


def _layouts() -> list:
    return [None, *real_isfs()]


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("implants") / "implants.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


@pytest.mark.parametrize("isf", _layouts(), ids=lambda p: p.name[:8] if p else "default")
def test_the_adapter_reads_what_the_forge_wrote(scenario_file, tmp_path, isf):
    result = forge(scenario_file, tmp_path / "img.raw", isf)
    plan = result.process(7100)
    source = open_image(result.image, VolatilitySettings([tmp_path / "symbols"], tmp_path / "cache"), lambda *a: None)
    [memory] = [o.memory for o in source.processes() if o.info.pid == 7100]
    threads = {t.tid: t for t in memory.threads()}
    planned = {t.tid: t for t in plan.threads}

    breakpoint = threads[7104].debug_registers
    dr0, dr1, _, _, dr7 = planned[7104].implants.debug
    assert (breakpoint.dr0, breakpoint.dr1, breakpoint.dr7) == (dr0, dr1, dr7)
    assert dr7 == 0x1 | 0x8 | (0b1001 << 20) and "ActiveDR7" in breakpoint.source
    assert threads[7108].debug_registers is None, "ActiveDR7 clear: the trap frame's debug fields are stale"

    apcs = threads[7104].apc_state
    assert (apcs.alertable, apcs.wait_mode, apcs.user_apc_pending, apcs.truncated) == (True, "user", True, None)
    shellcode = next(v.start for v in plan.vads if v.label == "shellcode")
    dispatcher = next(m for m in plan.modules if m.path.endswith("ntdll.dll")).base
    routines = [(a.normal_routine, a.normal_context, a.system_argument1) for a in apcs.user_apcs]
    assert routines[0] == (shellcode, 0, 0)
    assert routines[1][1:] == (shellcode + 0x20, 7) and routines[1][0] > dispatcher
    assert threads[7108].apc_state.apcs == () and threads[7108].apc_state.alertable is False

    bases = {m.name.lower(): m.base for m in memory.modules()}
    ole32, wbemcons = memory.mapped_file(bases["ole32.dll"]), memory.mapped_file(bases["wbemcons.dll"])
    assert ole32.transaction and ole32.delete_pending is False and ole32.name == "\\Windows\\System32\\ole32.dll"
    assert wbemcons.delete_pending is True and wbemcons.transaction == 0
    clean = memory.mapped_file(bases["kernel32.dll"])
    assert (clean.delete_pending, clean.transaction) == (False, 0)
    assert ole32.file_object != memory.mapped_file(bases["ntdll.dll"]).file_object
    images = {r.allocation_base: r for r in memory.regions() if r.kind is RegionKind.IMAGE}
    assert images[bases["zipfld.dll"]].path == "\\Users\\Public\\payload.dll"
    assert images[bases["amsi.dll"]].private_executable_bytes == 0x1000
    assert images[bases["kernelbase.dll"]].private_executable_bytes == 0


@pytest.mark.parametrize("key, message", [
    ('breakpoints = [{ address = "amsi.dll!AmsiScanBuffer", condition = "exec" }]', "condition: one of execute"),
    ('breakpoints = [{ addr = "x" }]', "unknown key 'addr'"),
    ('breakpoints = [{ address = "x" }, { address = "x" }, { address = "x" }, { address = "x" }, { address = "x" }]',
     "four debug registers"),
    ('apcs = [{ routine = "x", via = "QueueUserApc" }]', "via: one of NtQueueApcThread, QueueUserAPC"),
    ('alertable = "yes"', "alertable: expected true or false"),
])
def test_thread_keys_that_cannot_be_built_name_the_key(tmp_path, key, message):
    path = tmp_path / "bad.toml"
    last = 'breakpoints = [{ address = "amsi.dll!AmsiScanBuffer" }]\n  debug_active = false'
    assert last in SCENARIO
    path.write_text(SCENARIO.replace(last, key), encoding="utf-8")
    with pytest.raises(ScenarioError, match=message) as caught:
        load_scenario(path)
    assert str(caught.value).startswith("bad.toml: process[1] (powershell.exe).thread[1]")


@pytest.mark.parametrize("old, new, message", [
    ('hex = "b857000780c3"', 'hex = "zz"', "hex: not hex"),
    ('export = "AmsiScanBuffer", hex', 'export = "AmsiScanBuffer", offset = 0x1000, hex', "either `export` or `offset`"),
    ('pe_header = false', 'pe_header = "no"', "pe_header: expected true or false"),
])
def test_module_and_region_keys_that_cannot_be_built_name_the_key(tmp_path, old, new, message):
    path = tmp_path / "bad.toml"
    assert old in SCENARIO
    path.write_text(SCENARIO.replace(old, new), encoding="utf-8")
    with pytest.raises(ScenarioError, match=message):
        load_scenario(path)


@pytest.mark.parametrize("old, new, message", [
    ('export = "AmsiScanBuffer"', 'export = "AmsiScanBuffers"', "amsi.dll has no export 'AmsiScanBuffers'"),
    ('size = 0x10000\n  protection = "R-X"', 'size = 0x2000\n  protection = "R-X"', "does not fit"),
])
def test_keys_the_forge_cannot_place_are_errors(tmp_path, old, new, message):
    path = tmp_path / "bad.toml"
    assert old in SCENARIO
    path.write_text(SCENARIO.replace(old, new), encoding="utf-8")
    with pytest.raises(ScenarioError, match=message):
        forge(path, tmp_path / "x.raw")
