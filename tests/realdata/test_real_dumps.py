"""The CLI on every real dump, as a responder runs it: no traceback, documented exit codes, every
thread accounted for, no finding on these benign (if crashed) processes, and the crash shown."""

from __future__ import annotations

import json

import pytest

from callstack_forensics.memory.minidump import MinidumpMemory
from tests.cli.conftest import cli

from .conftest import dump_named, real_dumps, windows_dumps


def stacks_of(path) -> list[dict]:
    run = cli("stacks", path, "--json", "--quiet")
    assert run.code == 0, run.stderr
    assert "Traceback" not in run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()]


def test_there_are_real_dumps_to_test():
    assert len(windows_dumps()) >= 6 and len(real_dumps()) > len(windows_dumps())


@pytest.mark.parametrize("path", windows_dumps(), ids=lambda p: p.stem)
def test_analyze_finds_nothing_on_a_benign_crashed_process_and_exits_0(path):
    run = cli("analyze", path, "--json", "--quiet")
    assert run.code == 0, run.stderr
    assert "Traceback" not in run.stderr
    analysis = json.loads(run.stdout)
    assert analysis["findings"] == []


@pytest.mark.parametrize("path", windows_dumps(), ids=lambda p: p.stem)
def test_every_thread_of_the_dump_has_a_stack_with_a_stop_reason(path):
    with MinidumpMemory(path) as dump:
        tids = [t.tid for t in dump.threads()]
    records = stacks_of(path)
    assert [r["tid"] for r in records] == tids
    assert all(r["stop_reason"] for r in records)
    assert all(r["frames"] or r.get("note") for r in records)  # frames, or why there are none


@pytest.mark.parametrize("path", windows_dumps(), ids=lambda p: p.stem)
def test_no_frame_is_called_code_on_bytes_alone(path):
    """Without a MemoryInfoList, protections are Unknown, never guessed; a frame outside every
    module is Unknown, and contains_unbacked is then null, not false."""
    for record in stacks_of(path):
        for frame in record["frames"]:
            if "module_name" not in frame:
                assert frame["symbol_info"] in ("Unknown", "Unbacked")
        if any("module_name" not in f and f["symbol_info"] == "Unknown" for f in record["frames"]):
            assert record["call_stack_contains_unbacked"] is None


def test_a_dump_of_macos_is_refused_naming_the_platform():
    run = cli("analyze", dump_named("rust-minidump_simple-crashpad"))
    assert run.code == 2
    assert "macOS" in run.stderr and "not of Windows" in run.stderr
    assert "TEB" not in run.stderr and "Traceback" not in run.stderr
    assert cli("stacks", dump_named("rust-minidump_simple-crashpad")).code == 2


@pytest.mark.parametrize("stem", ["breakpad_write_av_non_canonical", "breakpad_thread_name_list",
                                  "rust-minidump_invalid-parameter", "breakpad_stack_exhaustion",
                                  "breakpad_tiny-exe-fastfail"])
def test_the_faulting_thread_shows_its_stack_at_the_exception_beside_where_it_is_now(stem):
    path = dump_named(stem)
    with MinidumpMemory(path) as dump:
        [faulting] = [t for t in dump.threads() if t.exception is not None]
        regs = faulting.exception.registers
    [record] = [r for r in stacks_of(path) if r["tid"] == faulting.tid]
    exception = record["exception"]
    ip = regs.get("rip", regs.get("eip"))
    assert int(exception["frames"][0]["instruction_pointer"], 16) == ip
    assert exception["code"] and exception["name"] and exception["stop_reason"]
    # the current stack is the thread where it is now (the crash handler), not the fault
    assert int(record["frames"][0]["instruction_pointer"], 16) == faulting.rip or faulting.rip is None


def test_the_current_walk_takes_no_stale_return_address_left_below_the_faulting_frame():
    # write_av_non_canonical: crash.exe+0x1324 (a call the faulting function made before it
    # faulted at +0x1331) sits 8 bytes below the faulting RSP, in dead stack the exception
    # dispatch reused; the scan from the handler used to take it as a frame
    [record] = [r for r in stacks_of(dump_named("breakpad_write_av_non_canonical")) if r["tid"] == 4488]
    addresses = [int(f["instruction_pointer"], 16) for f in record["frames"]]
    assert 0x7FF738721324 not in addresses
    assert record["stop_reason"] == "reached the exception dispatch frame"


def test_a_stack_overflow_keeps_its_recursion_and_a_stale_copy_of_the_fault_is_no_frame():
    [record] = [r for r in stacks_of(dump_named("breakpad_stack_exhaustion")) if "exception" in r]
    frames = record["exception"]["frames"]
    assert int(frames[0]["instruction_pointer"], 16) == 0xDEA637
    recursion = [f for f in frames[1:] if int(f["instruction_pointer"], 16) == 0xDEA6A7]
    assert len(recursion) >= 50 and all(f["call_verified"] for f in recursion)
    # rust-minidump's invalid parameter: the captured context's RIP is also a value on the stack
    [crashed] = [r for r in stacks_of(dump_named("rust-minidump_invalid-parameter")) if "exception" in r]
    at_fault = [int(f["instruction_pointer"], 16) for f in crashed["exception"]["frames"]]
    assert len(at_fault) == len(set(at_fault)), at_fault


def test_a_syscall_stub_of_a_module_the_dump_lacks_still_gives_its_caller():
    """Windows 10 x64 idle threads stop at stub+0x14 on `ret`; the dump holds 256 bytes around
    RIP but no ntdll image: the epilog is certain, so [rsp] is frame 1 (unverified: no bytes)."""
    records = stacks_of(dump_named("breakpad_tiny-exe-fastfail"))
    idle = [r for r in records if r["frames"][0]["instruction_pointer"] == "0x7ffb0b1d0994"]
    assert len(idle) == 3
    for record in idle:
        assert record["frames"][1]["instruction_pointer"] == "0x7ffb0b182dc7"
        assert record["frames"][1]["call_verified"] is None and record["frames"][1]["trust"] == "medium"
