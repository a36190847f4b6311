"""The fleet run: one Dask task per source, each result written to the case store as it lands.

A re-run of the same command is the resume: a source whose file (path, size, modification time)
or SHA-256 is already in the store is not analysed again, so a crash or Ctrl-C costs only the
sources that were running. Dask retries a task whose worker died (up to its ``allowed-failures``);
a source that still cannot finish is recorded as failed with the reason, like any other failure.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .store import DONE, FAILED_STATUS, CaseStore, FileStamp
from .task import EVENT_TOPIC, SKIPPED, SourceJob, SourceOutcome, run_source


class FleetProgress(Protocol):
    """What the run reports while it goes (the CLI's rich view; tests observe the workers)."""

    def begin(self, total: int, already: int) -> None:
        """``total`` sources to analyse; ``already`` skipped because the store has them."""

    def started(self, path: str, worker: str, pid: int) -> None:
        """A worker began ``path`` (called from the client's event thread)."""

    def finished(self, outcome: SourceOutcome) -> None:
        """A source is done, skipped (its SHA-256 is in the store) or failed."""


class NullFleetProgress:
    def begin(self, total: int, already: int) -> None:
        pass

    def started(self, path: str, worker: str, pid: int) -> None:
        pass

    def finished(self, outcome: SourceOutcome) -> None:
        pass


@dataclass(slots=True)
class FleetResult:
    """How the run went, in counts and seconds."""

    analysed: int = 0
    already: int = 0  # in the store before this run (same file, or same SHA-256)
    failed: int = 0
    seconds: float = 0.0
    peak_rss: dict[str, int] = field(default_factory=dict)  # worker -> its peak resident bytes
    outcomes: list[SourceOutcome] = field(default_factory=list)

    @property
    def sources_per_minute(self) -> float:
        return 60.0 * self.analysed / self.seconds if self.seconds else 0.0


def run_fleet(client: Any, sources: list[Path], store: CaseStore, job: SourceJob,
              progress: FleetProgress | None = None) -> FleetResult:
    """Analyse every source of ``sources`` not yet in ``store`` on ``client``'s cluster.

    ``job`` is the template every source's job is made from (options, time limit)."""
    progress = progress or NullFleetProgress()
    started = time.monotonic()
    store.create()
    stamps = store.stamps()
    todo, result, gone = _plan(sources, stamps)
    for outcome in gone:
        _record(store, outcome, result)
    progress.begin(len(todo), result.already)
    jobs = [SourceJob(stamp, job.options, job.timeout, job.with_report) for stamp in todo]
    client.subscribe_topic(EVENT_TOPIC, lambda event: _started(progress, event))
    # the store's SHA-256 travel once to each worker, not once per task
    [known] = client.scatter([frozenset(store.done())], broadcast=True) if jobs else [frozenset()]
    run = uuid.uuid4().hex[:8]  # a key per run: a long-lived cluster may still remember an earlier run's
    futures = [client.submit(run_source, j, known, key=f"callstack-source-{_key(j.stamp)}-{run}", pure=False)
               for j in jobs]
    try:
        _collect(client, futures, jobs, store, result, progress)
    except BaseException:  # Ctrl-C or a lost scheduler: what is written stays, the rest resumes next run
        client.cancel(futures)
        raise
    finally:
        client.unsubscribe_topic(EVENT_TOPIC)
    result.seconds = time.monotonic() - started
    return result


def _plan(sources: list[Path], stamps: dict[FileStamp, str]) -> tuple[list[FileStamp], FleetResult, list[SourceOutcome]]:
    """The sources to submit, largest first (a big image started last would finish last alone), and
    those that vanished or became unreadable since they were listed (failed, with the reason)."""
    result = FleetResult()
    todo: dict[str, FileStamp] = {}
    gone = []
    for path in sources:
        try:
            stamp = FileStamp.of(path)
        except OSError as exc:
            gone.append(SourceOutcome(FileStamp(str(path.absolute()), 0, 0), FAILED_STATUS,
                                      error=f"cannot read: {exc.strerror or exc}"))
            continue
        if stamp in stamps:
            result.already += 1
        else:
            todo.setdefault(stamp.path, stamp)
    return sorted(todo.values(), key=lambda s: (-s.size, s.path)), result, gone


def _collect(client: Any, futures: list[Any], jobs: list[SourceJob], store: CaseStore, result: FleetResult,
             progress: FleetProgress) -> None:
    from distributed import as_completed

    by_key = {f.key: j for f, j in zip(futures, jobs)}
    for future in as_completed(futures):
        job = by_key[future.key]
        try:
            outcome = future.result()
        except Exception as exc:  # the task never returned: its workers kept dying, or it was cancelled
            outcome = SourceOutcome(job.stamp, FAILED_STATUS, error=f"{type(exc).__name__}: {exc}")
        finally:
            future.release()
        _record(store, outcome, result)
        progress.finished(outcome)


def _record(store: CaseStore, outcome: SourceOutcome, result: FleetResult) -> None:
    if outcome.worker:
        result.peak_rss[outcome.worker] = max(result.peak_rss.get(outcome.worker, 0), outcome.peak_rss)
    if outcome.status == DONE:
        report = store.report_path(outcome.sha256 or "").relative_to(store.root) if outcome.report else None
        written = store.write_source(outcome.row(str(report) if report else None), outcome.tables, outcome.report)
        if not written:
            outcome.status = SKIPPED
    elif outcome.status == FAILED_STATUS:
        store.write_failure(outcome.row())
    outcome.tables, outcome.report = {}, None  # written: do not keep a fleet's worth in memory
    if outcome.status == DONE:
        result.analysed += 1
    elif outcome.status == SKIPPED:
        result.already += 1
    else:
        result.failed += 1
    result.outcomes.append(outcome)


def _started(progress: FleetProgress, event: Any) -> None:
    _, message = event
    if isinstance(message, dict) and message.get("event") == "start":
        progress.started(str(message.get("path")), str(message.get("worker")), int(message.get("pid", 0)))


def _key(stamp: FileStamp) -> str:
    return hashlib.sha256(f"{stamp.path}\0{stamp.size}\0{stamp.mtime_ns}".encode()).hexdigest()[:24]

