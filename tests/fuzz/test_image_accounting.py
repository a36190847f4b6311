"""The image fuzzer's bookkeeping, without Volatility: how rows become threads, which listed
threads count as dropped, how an image's result is filed, how a mutated image is built."""

from __future__ import annotations

from collections import Counter

from tests.fuzz.image_mutation_base import Mutation
from tests.fuzz.image_pool import ImageTask, WorkerLost, mutated_bytes, where_it_hung
from tests.fuzz.image_run import ImageOutcome, ThreadRows, _process_notes, _threads_from_rows, dropped_threads
from tests.fuzz.image_view import Patch
from tests.fuzz.images import ImageCase, ImageCounts, record

NA = object()  # stands for Volatility's NotAvailableValue (anything that is not an int frame index)


def row(pid: int, tid: int, frame, note: str = "") -> list:
    return [pid, "p.exe", tid, frame, 0, "", "", "", "", NA, note]


def test_rows_group_into_threads_at_frame_zero_and_at_frameless_rows() -> None:
    rows = [row(8, 12, 0), row(8, 12, 1), row(8, 12, 2, "stop: end of stack"),
            row(8, 16, NA, "system thread: no TEB, no user-mode context"),
            row(8, 16, NA, "system thread: no TEB, no user-mode context"),  # a second thread with the same tid
            row(9, 20, 0, "found by scan")]
    threads = _threads_from_rows(rows)
    assert [(t.pid, t.tid, t.frames) for t in threads] == [(8, 12, 3), (8, 16, 0), (8, 16, 0), (9, 20, 1)]
    assert threads[0].notes == ["stop: end of stack"]


def test_a_listed_thread_without_a_row_is_dropped_unless_its_process_is_noted() -> None:
    listed = [(8, 12), (8, 16), (8, 16), (9, 20), (10, 24)]
    rows = [ThreadRows(8, 12, 2), ThreadRows(8, 16, 0, ["no trap frame"]), ThreadRows(9, 20, 1)]
    assert dropped_threads(listed, rows, set()) == [(8, 16), (10, 24)]
    assert dropped_threads(listed, rows, {10}) == [(8, 16)]
    assert _process_notes(["PID 10: process layer not available ()", "rule not loaded: x"]) == \
        {10: "process layer not available ()"}


def _case(families: tuple[str, ...] = ("vad",)) -> ImageCase:
    return ImageCase(7, 3, "direct_syscall", tuple(Mutation(f, "what") for f in families))


def test_each_image_is_filed_once_and_news_is_measured_against_the_genuine_image() -> None:
    counts = ImageCounts()
    baseline = {"direct_syscall": Counter({"thread: stop: end of stack": 20})}
    record(counts, _case(), ImageOutcome(notes=Counter({"thread: stop: end of stack": 20})), baseline)
    record(counts, _case(), ImageOutcome(notes=Counter({"thread: stop: end of stack": 18,
                                                        "thread: stack bounds unknown": 2,
                                                        "process: loader list unreadable": 1})), baseline)
    record(counts, _case(("truncate",)), ImageOutcome(unopenable="unsatisfied: kernel"), baseline)
    record(counts, _case(), ImageOutcome(crash="ValueError: x (adapter.py:1 in f)"), baseline)
    record(counts, _case(), ImageOutcome(dropped=[(8, 12)], listed=40), baseline)
    record(counts, _case(), WorkerLost(True, "ran past the bound"), baseline)
    record(counts, _case(), WorkerLost(False, "worker died (exit code -11)"), baseline)
    assert (counts.tried, counts.clean, counts.noted, len(counts.crashes), len(counts.hangs)) == (7, 1, 2, 3, 1)
    assert counts.accounted and not counts.ok
    assert counts.notes == Counter({"process: loader list unreadable": 1,
                                    "image not openable: unsatisfied: kernel": 1})
    assert counts.inner_notes == Counter({"thread: stack bounds unknown": 2, "process: loader list unreadable": 1})
    assert counts.dropped_threads == 1 and counts.unopenable == 1
    assert "dropped 1 of 40 threads (pid/tid 8/12)" in counts.crashes[1].detail
    assert counts.hangs[0].reproduce == "python -m tests.fuzz --images-case 3 --seed 7"
    assert counts.cases == Counter({"vad": 6, "truncate": 1})


def test_a_mutated_image_is_the_base_with_its_patches_then_cut() -> None:
    base = bytes(range(16)) * 2
    task = ImageTask(1, "s", (Patch(2, b"\xaa\xbb"), Patch(30, b"\xcc\xdd\xee")), truncate=None)
    out = mutated_bytes(base, task)
    assert out[2:4] == b"\xaa\xbb" and out[30:] == b"\xcc\xdd" and len(out) == len(base)
    cut = mutated_bytes(base, ImageTask(1, "s", (Patch(2, b"\xaa"),), truncate=5))
    assert cut == bytes([0, 1, 0xAA, 3, 4])


def test_a_hang_is_reported_where_the_worker_was() -> None:
    dump = ('Timeout (0:00:58)!\nThread 0x00007f (most recent call first):\n'
            '  File "/x/volatility3/framework/layers/intel.py", line 200 in _translate\n'
            '  File "/work/main/plugins/callstacks/adapter.py", line 182 in _vads\n'
            '  File "/work/main/callstack_forensics/walker.py", line 42 in walk_thread\n'
            '  File "/work/main/tests/fuzz/image_run.py", line 1 in run\n')
    assert where_it_hung(dump) == ("layers/intel.py:200 in _translate <- callstacks/adapter.py:182 in _vads "
                                   "<- callstack_forensics/walker.py:42 in walk_thread")
    assert where_it_hung("") == "no traceback"
