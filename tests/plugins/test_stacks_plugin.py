"""`vol -p plugins callstacks.stacks` on forged images, through the real vol CLI."""

from __future__ import annotations

import pytest

from callstack_forensics.forge import forge as forge_api

from .conftest import REPO, vol_json


def flatten(rows):
    for row in rows:
        yield row
        yield from flatten(row.get("__children", []))


def threads_of(image):
    return {(r["PID"], r["TID"]) for r in flatten(vol_json(image, "windows.threads"))}


def test_every_thread_windows_threads_lists_appears_with_frames_or_a_reason(benign_image):
    rows = list(flatten(vol_json(benign_image, "callstacks.stacks")))
    stacks = [r for r in rows if r["TID"] is not None]
    assert {(r["PID"], r["TID"]) for r in stacks} == threads_of(benign_image)
    for row in stacks:
        assert row["Frame"] is not None or row["Note"], row
    # Rows without a thread are about a whole process: what it lost, said in the grid, not only logged.
    whole = [r for r in rows if r["TID"] is None]
    assert whole and all(r["Note"].startswith(("process: ", "process not readable: ")) for r in whole)
    assert 4 in {r["PID"] for r in whole}  # System: no PEB


def test_user_threads_unwind_to_the_thread_start_with_verified_calls(benign_image):
    rows = [r for r in flatten(vol_json(benign_image, "callstacks.stacks")) if r["Frame"] is not None]
    by_thread = {}
    for r in rows:
        by_thread.setdefault((r["PID"], r["TID"]), []).append(r)
    assert len(by_thread) > 100
    for frames in by_thread.values():
        assert frames[0]["Frame"] == 0 and frames[0]["CallVerified"] is None
        assert all(f["CallVerified"] is True for f in frames[1:])
        assert frames[-1]["Note"] == "stop: end of stack", frames[-1]
        assert "RtlUserThreadStart" in frames[-1]["Symbol"]
        assert all(f["Protection"] == "R-X" for f in frames), "image frames take their section's protection"


def test_pid_and_tid_filters(benign_image):
    rows = list(flatten(vol_json(benign_image, "callstacks.stacks")))
    pid, tid = next((r["PID"], r["TID"]) for r in rows if r["Frame"] is not None)
    only_pid = list(flatten(vol_json(benign_image, "callstacks.stacks", "--pid", str(pid))))
    assert {r["PID"] for r in only_pid} == {pid}
    only_tid = list(flatten(vol_json(benign_image, "callstacks.stacks", "--pid", str(pid), "--tid", str(tid))))
    assert {r["TID"] for r in only_tid} == {tid}


def test_bytes_option_adds_128_hex_chars_of_call_site(benign_image):
    rows = [r for r in flatten(vol_json(benign_image, "callstacks.stacks", "--bytes")) if r["Frame"] is not None]
    assert rows and all(len(r["LeadingBytes"].replace(" ", "")) == 128 for r in rows)
    assert all(r["LeadingBytes"].endswith("0f 05") for r in rows if r["Frame"] == 0)


def test_real_kernel_layouts_list_every_thread(benign_real_isf_image):
    stacks = [r for r in flatten(vol_json(benign_real_isf_image, "callstacks.stacks")) if r["TID"] is not None]
    assert {(r["PID"], r["TID"]) for r in stacks} == threads_of(benign_real_isf_image)
    unwound = [r for r in stacks if r["Frame"] is not None]
    assert len({(r["PID"], r["TID"]) for r in unwound}) > 100


SCENARIOS = sorted((REPO / "samples" / "scenarios").glob("*.toml"))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.stem)
def test_plugin_gives_each_scenario_thread_its_call_chain_frame_by_frame(scenario, tmp_path):
    """Through vol: every thread's frames are exactly the return addresses the forge laid out
    from the scenario's `module!function` chain (64-bit part then 32-bit part for WOW64)."""
    result = forge_api(scenario, tmp_path / "x.raw")
    rows = [r for r in flatten(vol_json(result.image, "callstacks.stacks")) if r["Frame"] is not None]
    got: dict[tuple[int, int], list[int]] = {}
    for row in rows:
        got.setdefault((row["PID"], row["TID"]), []).append(row["Address"])
    for plan in result.plans:
        for thread in plan.threads:
            if plan.kernel_only or not thread.return_addresses:
                continue
            frames = got[(plan.pid, thread.tid)]
            if thread.wow64 is None:
                assert frames == thread.return_addresses, (scenario.stem, plan.name, thread.tid)
            else:
                cut = len(frames) - len(thread.return_addresses32)
                assert frames[cut:] == thread.return_addresses32, (scenario.stem, plan.name, thread.tid)
                assert cut > 0 and frames[:cut] == thread.return_addresses[:cut], (scenario.stem, plan.name, thread.tid)


def test_max_frames_and_max_stack_bytes_reach_the_walk(scenario_image):
    """The user's limits: --max-frames cuts every stack; --max-stack-bytes bounds the scan that
    finds the caller of direct_syscall's shellcode (its frame has no unwind data)."""
    image = scenario_image("direct_syscall")
    rows = [r for r in flatten(vol_json(image, "callstacks.stacks", "--max-frames", "2")) if r["Frame"] is not None]
    assert rows and max(r["Frame"] for r in rows) == 1
    assert any(r["Note"] == "stop: frame limit reached" for r in rows)
    notes = [r["Note"] or "" for r in flatten(vol_json(image, "callstacks.stacks", "--max-stack-bytes", "8"))]
    assert any("max_stack_bytes 0x8 reached" in n for n in notes)
    assert not any("max_stack_bytes" in (r["Note"] or "") for r in flatten(vol_json(image, "callstacks.stacks")))
