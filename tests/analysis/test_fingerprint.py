"""The source's SHA-256: worked out by a child process beside the analysis, equal to hashlib's,
with its progress, its failure in words, and nothing left running once the run stops."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from callstack_forensics.analysis import fingerprint
from callstack_forensics.analysis.fingerprint import CHUNK, BackgroundSha256, sha256_file


@pytest.fixture(params=["child", "thread"])
def where(request, monkeypatch) -> str:
    """Both ways the hash runs: a child process, or (where none can be started) a thread here."""
    if request.param == "thread":
        monkeypatch.setattr(fingerprint, "_start_child", lambda path: None)
    return request.param


@pytest.fixture
def sample(tmp_path) -> Path:
    """Three chunks and a bit, so the running total is reported more than once and ends short."""
    path = tmp_path / "image.raw"
    path.write_bytes(random.Random(7).randbytes(3 * CHUNK + 12345))
    return path


def test_the_background_hash_is_the_files_sha256_with_a_running_total(sample, where):
    totals: list[int] = []
    hashing = BackgroundSha256(sample, totals.append)
    assert (hashing.pid is not None) == (where == "child")
    digest = hashing.result()
    assert digest == hashlib.sha256(sample.read_bytes()).hexdigest() == sha256_file(sample)
    size = sample.stat().st_size
    assert totals == [CHUNK, 2 * CHUNK, 3 * CHUNK, size]


def test_a_failing_progress_callback_does_not_lose_the_hash(sample, where):
    def broken(done: int) -> None:
        raise RuntimeError("the terminal went away")

    assert BackgroundSha256(sample, broken).result() == sha256_file(sample)


def test_a_file_that_cannot_be_hashed_says_why(tmp_path, where):
    missing = tmp_path / "gone.raw"
    with pytest.raises(OSError) as raised:
        BackgroundSha256(missing).result()
    assert str(missing) in str(raised.value) and "No such file" in str(raised.value)


def test_a_cancelled_hash_leaves_no_process_behind(tmp_path):
    big = tmp_path / "sparse.raw"
    with open(big, "wb") as handle:
        handle.truncate(64 << 30)  # sparse: minutes of hashing, no disk
    hashing = BackgroundSha256(big)
    hashing.cancel()
    with pytest.raises(ProcessLookupError):
        os.kill(hashing.pid, 0)  # killed and reaped
    with pytest.raises(OSError):
        hashing.result()


def test_a_cancelled_hash_on_a_thread_stops_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(fingerprint, "_start_child", lambda path: None)
    big = tmp_path / "sparse.raw"
    with open(big, "wb") as handle:
        handle.truncate(64 << 30)
    hashing = BackgroundSha256(big)
    hashing.cancel()  # returns once the thread has stopped: it would take minutes otherwise
    assert hashing.done < big.stat().st_size
    with pytest.raises(OSError):
        hashing.result()


def test_the_hash_stops_between_chunks_when_told(sample):
    """The child asks before each chunk whether its parent is still there."""
    asked: list[int] = []

    def keep_going() -> bool:
        asked.append(1)
        return len(asked) < 2

    with pytest.raises(InterruptedError):
        sha256_file(sample, keep_going=keep_going)
    assert len(asked) == 2
