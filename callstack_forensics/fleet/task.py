"""One fleet task: one source analysed on a Dask worker, returned as Parquet bytes and a case report.

The task hashes the source first and stops there when the store already holds that SHA-256
(a copy of a file done before, or a re-run); otherwise it runs exactly what ``analyze`` runs
(``cli.common.analysis_options``), reads the host name from the memory, and converts the result
to the store's tables. It never raises: a source that cannot be read, or runs past its time limit,
comes back as a ``failed`` outcome with the reason, so one bad file never stops the fleet. Writing
is left to the client, so the workers need to reach the sources but not the case folder.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

from .. import __version__
from ..analysis import Analysis, OpenedProcess, Source, analyze
from ..analysis.fingerprint import sha256_file
from ..analysis.progress import NullProgress
from ..cli import common
from ..memory import ProcessMemory
from ..sources import SourceError
from ..volatility.caches import release_volatility_caches
from .deadline import SourceTimeout, deadline
from .hostname import HostName, host_name
from .store import DONE, FAILED_STATUS, FileStamp, parquet_bytes
from .tables import SourceKey, analysis_tables

SKIPPED = "skipped"
EVENT_TOPIC = "callstack-forensics-fleet"


@dataclass(frozen=True, slots=True)
class SourceJob:
    """Everything a worker needs for one source (picklable: it travels to the worker)."""

    stamp: FileStamp
    options: common.RunOptions
    timeout: float | None = None
    with_report: bool = True


@dataclass(slots=True)
class SourceOutcome:
    """What came back for one source: ``done`` with its tables, ``skipped`` or ``failed``."""

    stamp: FileStamp
    status: str
    sha256: str | None = None
    host: HostName | None = None
    kind: str | None = None
    windows: str | None = None
    error: str | None = None
    seconds: float = 0.0
    worker: str = ""
    peak_rss: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    tables: dict[str, bytes] = field(default_factory=dict)
    report: str | None = None

    def row(self, report: str | None = None) -> dict[str, Any]:
        """The outcome as a row of the store's source table."""
        return {"sha256": self.sha256, "host": self.host.name if self.host else None,
                "host_origin": self.host.origin if self.host else None, "path": self.stamp.path,
                "size": self.stamp.size, "mtime_ns": self.stamp.mtime_ns, "kind": self.kind, "windows": self.windows,
                "status": self.status, "error": self.error, "seconds": self.seconds, "worker": self.worker,
                "peak_rss": self.peak_rss, "processes": self.counts.get("processes"),
                "threads": self.counts.get("threads"), "events": self.counts.get("events"),
                "findings": self.counts.get("findings"), "finished_at": dt.datetime.now(dt.timezone.utc),
                "tool_version": __version__, "report": report}


def run_source(job: SourceJob, known: frozenset[str] = frozenset()) -> SourceOutcome:
    """The task: analyse one source unless its SHA-256 is in ``known`` (the store's); every
    failure becomes a ``failed`` outcome with its reason."""
    started = time.monotonic()
    worker = _announce(job)
    outcome = SourceOutcome(job.stamp, FAILED_STATUS, worker=worker)
    try:
        with deadline(job.timeout):
            _analyse(job, known, outcome)
    except SourceTimeout:
        outcome.status, outcome.error = FAILED_STATUS, f"timed out after {job.timeout:g} s"
    except SourceError as exc:  # its message starts with the path, which the row already holds
        outcome.status, outcome.error = FAILED_STATUS, str(exc).removeprefix(f"{job.stamp.path}: ")
    except Exception as exc:  # the source's failure, never the fleet's: say where it broke
        outcome.status, outcome.error = FAILED_STATUS, _describe(exc)
    finally:
        release_volatility_caches()  # a worker goes on to other sources: let this one's image go
    outcome.seconds = round(time.monotonic() - started, 3)
    outcome.peak_rss = peak_rss()
    if outcome.status != DONE:
        outcome.tables, outcome.report = {}, None
    return outcome


def _analyse(job: SourceJob, known: frozenset[str], outcome: SourceOutcome) -> None:
    path = Path(job.stamp.path)
    common.check_folders(job.options)
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    outcome.sha256 = sha256_file(path)
    if outcome.sha256 in known:
        outcome.status = SKIPPED
        return
    opts = replace(job.options, hash_source=False, quiet=True)
    options = common.analysis_options(opts)
    source = KeepingSource(common.open_with_progress(path, opts, SilentStages()))
    source.info.sha256 = outcome.sha256
    analysis = analyze(source, options)
    outcome.host = host_name(source.memories, path)
    outcome.kind, outcome.windows = analysis.source.kind, analysis.source.windows
    outcome.counts = counts(analysis)
    key = SourceKey(outcome.sha256, outcome.host.name)
    outcome.tables = {name: parquet_bytes(table) for name, table in analysis_tables(analysis, key).items()}
    if job.with_report:
        from ..report import render_report

        outcome.report = render_report(analysis)
    outcome.status = DONE


def counts(analysis: Analysis) -> dict[str, int]:
    return {"processes": len(analysis.processes), "threads": analysis.threads, "events": len(analysis.events),
            "findings": len(analysis.findings)}


def peak_rss() -> int:
    """This process's peak resident memory in bytes (Linux reports KiB): the worker's high-water mark."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _describe(exc: BaseException) -> str:
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    at = f" (at {Path(where[0].filename).name}:{where[0].lineno})" if where else ""
    return f"{type(exc).__name__}: {exc}{at}"


def _announce(job: SourceJob) -> str:
    """Tell the client this source started, and where (its progress shows running tasks; a test
    kills that worker); returns the worker's address, or ``local`` outside Dask."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return "local"
    worker.log_event(EVENT_TOPIC, {"event": "start", "path": job.stamp.path, "pid": os.getpid(),
                                   "worker": worker.address})
    return str(worker.address)


class KeepingSource:
    """A Source that remembers the process memories it handed out: the host name is read from
    them after the analysis, without opening the image twice."""

    def __init__(self, inner: Source) -> None:
        self.inner = inner
        self.info = inner.info
        self.memories: list[ProcessMemory] = []

    def processes(self) -> Iterator[OpenedProcess]:
        for item in self.inner.processes():
            if item.memory is not None:
                self.memories.append(item.memory)
            yield item

    def observed_at(self) -> dt.datetime | None:
        return self.inner.observed_at()


class SilentStages(NullProgress):
    """The stage interface ``open_with_progress`` reports to, showing nothing (a worker has no terminal)."""

    def volatility_callback(self, name: str = "image"):
        return lambda percent, description="": None
