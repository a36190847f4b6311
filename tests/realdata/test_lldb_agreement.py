"""Our frames on the real dumps against LLDB's, the independent reader of the same files.

LLDB unwinds these normal dumps without module files: x64 threads stop at frame 0 (no .pdata
to read), 32-bit threads follow the EBP chain, and for the crashed thread it shows the stack at
the exception. Every frame LLDB produces must be one of ours, in the same order (we may have
more: the return address a `ret` at frame 0 points at, which LLDB's EBP walk skips), and we
must never have fewer frames than LLDB on a thread.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.wine.conftest import in_ci
from tests.wine.lldb_reference import SCRIPT, lldb_missing, system_python

from .conftest import windows_dumps
from .test_real_dumps import stacks_of


def lldb_frames(dump, work) -> dict[int, list[int]]:
    empty = work / "modules"
    empty.mkdir(exist_ok=True)
    cmd = [system_python(), str(SCRIPT), str(dump), "--work", str(work), "--search", str(empty)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in result, result
    return {int(tid): [f["pc"] for f in frames] for tid, frames in result["threads"].items()}


def is_subsequence(short: list[int], long: list[int]) -> bool:
    it = iter(long)
    return all(any(x == y for y in it) for x in short)


@pytest.fixture(scope="module", autouse=True)
def needs_lldb():
    missing = lldb_missing()
    if missing:
        if in_ci():
            pytest.fail(f"CI=true but LLDB cannot run: {missing}", pytrace=False)
        pytest.skip(f"LLDB NOT RUN: {missing}")


@pytest.mark.parametrize("path", windows_dumps(), ids=lambda p: p.stem)
def test_every_frame_lldb_finds_is_ours_in_order(path, tmp_path):
    theirs = lldb_frames(path, tmp_path)
    for record in stacks_of(path):
        ours = record["exception"]["frames"] if "exception" in record else record["frames"]
        addresses = [int(f["instruction_pointer"], 16) for f in ours]
        reference = theirs[record["tid"]]
        assert is_subsequence(reference, addresses), (record["tid"], [hex(a) for a in reference], [hex(a) for a in addresses])
        assert len(addresses) >= len(reference)


def test_32_bit_threads_without_module_bytes_keep_the_ebp_chain_lldb_walks(tmp_path):
    """Before, each return address was dropped for want of call-site bytes: 1 to 2 frames a
    thread where LLDB recovers 4 to 7."""
    [path] = [p for p in windows_dumps() if p.stem == "breakpad_thread_name_list"]
    theirs = lldb_frames(path, tmp_path)
    for record in stacks_of(path):
        current = [int(f["instruction_pointer"], 16) for f in record["frames"]]
        assert len(current) >= 4, record["tid"]
        if "exception" not in record:
            assert len(current) >= len(theirs[record["tid"]])
