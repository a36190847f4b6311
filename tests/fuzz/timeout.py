"""A per-case time bound: SIGPROF in the main thread, so a case that loops is stopped and counted.

The bound is on the CPU time of the thread running the case, not the wall clock: a loop burns CPU
and is caught, while a busy machine (CI with other jobs, load 5 on 2 cores) does not turn a slow
but finishing case into a "hang". The engine does no blocking I/O, so CPU time is the measure.

ITIMER_PROF counts the whole process's CPU, every thread's: a native pool left by an earlier test
in the same pytest process (a database's or BLAS's workers) would spend a case's budget for it.
So the timer only wakes the handler, which compares the case thread's own CPU time
(``time.thread_time``) with the bound and re-arms for the rest when the case has not used it.

The exception derives from BaseException on purpose: the engine turns hostile-source errors into
notes with ``except Exception`` (the page cache does), and a time-out caught there would read as a
note instead of a hang.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from typing import Iterator

MIN_REARM = 0.01  # seconds: never re-arm for less, so a nearly spent budget does not spin on signals


class CaseTimeout(BaseException):
    """A case ran past its time bound: the engine would hang on this input."""


def _alarm_usable() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`CaseTimeout` inside the block once it has used ``seconds`` of its thread's CPU.

    Outside the main thread (no signals there) the block runs to its end and overrunning it
    raises afterwards, so a slow case is still reported, if not interrupted.
    """
    if not _alarm_usable():
        start = time.monotonic()
        yield
        if time.monotonic() - start > seconds:
            raise CaseTimeout(f"took more than {seconds:g} s")
        return

    start = time.thread_time()

    def expired(signum: int, frame: object) -> None:
        left = seconds - (time.thread_time() - start)
        if left > 0:  # other threads spent the process's CPU: the case has budget left
            signal.setitimer(signal.ITIMER_PROF, max(left, MIN_REARM))
            return
        raise CaseTimeout(f"took more than {seconds:g} s")

    previous = signal.signal(signal.SIGPROF, expired)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
