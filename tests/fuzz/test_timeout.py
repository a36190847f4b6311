"""The fuzzers' per-case bound catches a case that loops, and only that case's own CPU counts."""

from __future__ import annotations

import threading
import time

import pytest

from .timeout import CaseTimeout, time_limit


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_case_that_loops_is_stopped():
    start = time.monotonic()
    with pytest.raises(CaseTimeout):
        with time_limit(0.3):
            while True:
                pass
    assert time.monotonic() - start < 5


def test_cpu_spent_by_another_thread_is_not_charged_to_the_case():
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            sum(range(1000))

    worker = threading.Thread(target=busy, daemon=True)
    worker.start()
    try:
        with time_limit(0.3):  # the process spends well over 0.3 s of CPU while this sleeps
            deadline = time.monotonic() + 1.2
            while time.monotonic() < deadline:
                time.sleep(0.01)
            _spin(0.1)
    finally:
        stop.set()
        worker.join()
