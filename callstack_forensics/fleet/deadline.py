"""A per-source time limit inside a Dask task, without killing the worker.

Dask runs a task in a worker thread and has no task timeout of its own; a source that takes too
long (a huge or hostile image) must become one failed row, not a worker stuck for hours. A watchdog
thread raises :class:`SourceTimeout` in the task's thread (CPython's asynchronous exception), which
the analysis notices at its next Python instruction. It derives from BaseException so that the
analysis's own "a bad process becomes a note" handlers (``except Exception``) cannot swallow it.
"""

from __future__ import annotations

import ctypes
import threading
from contextlib import contextmanager
from typing import Iterator


class SourceTimeout(BaseException):
    """The source's time limit passed."""


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise SourceTimeout in this thread once ``seconds`` have passed (no limit when None or 0)."""
    if not seconds:
        yield
        return
    target = threading.get_ident()
    lock = threading.Lock()
    finished = threading.Event()

    def fire() -> None:
        if finished.wait(seconds):
            return
        with lock:
            if not finished.is_set():
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), ctypes.py_object(SourceTimeout))

    watchdog = threading.Thread(target=fire, name="callstack-fleet-deadline", daemon=True)
    watchdog.start()
    try:
        yield
    finally:
        with lock:
            finished.set()
        watchdog.join()
