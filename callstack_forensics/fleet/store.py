"""The case store: a folder of Parquet files, one sub-folder per analysed source, written atomically.

Layout of ``CASE_DIR``::

    store/<sha256>/source.parquet      one row: the source, its host, how the run went
    store/<sha256>/processes.parquet   ... threads, frames, events, findings (tables.SCHEMAS)
    failed/<path-id>.parquet           one row per source that could not be analysed, with the error
    reports/<sha256>.html              each source's own case report
    fleet.html                         the fleet report

A source's folder is filled in a staging folder beside it and renamed into place in one step, so
a reader (DuckDB while the fleet runs, a crash half-way) sees each source whole or not at all,
and a re-run knows what is done by listing ``store/``. Nothing here needs a server: any Parquet
reader takes ``store/*/frames.parquet``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .tables import TABLES

STORE, FAILED, REPORTS, STAGING = "store", "failed", "reports", ".staging"
SOURCE_TABLE = "source"
FLEET_REPORT = "fleet.html"
DONE, FAILED_STATUS = "done", "failed"

SOURCE_SCHEMA = pa.schema([
    pa.field("sha256", pa.string()), pa.field("host", pa.string()), ("host_origin", pa.string()),
    ("path", pa.string()), ("size", pa.int64()), ("mtime_ns", pa.int64()), ("kind", pa.string()),
    ("windows", pa.string()), ("status", pa.string()), ("error", pa.string()), ("seconds", pa.float64()),
    ("worker", pa.string()), ("peak_rss", pa.int64()), ("processes", pa.int64()), ("threads", pa.int64()),
    ("events", pa.int64()), ("findings", pa.int64()), ("finished_at", pa.timestamp("us", tz="UTC")),
    ("tool_version", pa.string()), ("report", pa.string()),
])


class StoreError(Exception):
    """The case folder cannot be used (not writable, or a file where the store's folders go)."""


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What identifies a file without reading it: resolved path, size and modification time."""

    path: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> "FileStamp":
        stat = path.stat()
        return cls(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


class CaseStore:
    """Reads and writes one case folder; every write is a rename, never a partial file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # ---- layout ------------------------------------------------------------------------

    @property
    def store_dir(self) -> Path:
        return self.root / STORE

    def source_dir(self, sha256: str) -> Path:
        return self.store_dir / sha256

    def report_path(self, sha256: str) -> Path:
        return self.root / REPORTS / f"{sha256}.html"

    def failure_path(self, path: str) -> Path:
        return self.root / FAILED / f"{hashlib.sha256(path.encode('utf-8')).hexdigest()[:32]}.parquet"

    def table_glob(self, table: str) -> str:
        return str(self.store_dir / "*" / f"{table}.parquet")

    def create(self) -> None:
        """Make the folders; a clear StoreError when the case folder cannot hold them."""
        try:
            for sub in (STORE, FAILED, REPORTS, STAGING):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise StoreError(f"{self.root}: cannot make the case folders there ({exc.strerror}: {exc.filename})") from exc
        except OSError as exc:
            raise StoreError(f"{self.root}: cannot make the case folders ({exc.strerror or exc})") from exc
        if not os.access(self.root, os.W_OK):
            raise StoreError(f"{self.root}: not writable")

    def exists(self) -> bool:
        return self.store_dir.is_dir()

    # ---- reading -----------------------------------------------------------------------

    def done(self) -> set[str]:
        """SHA-256 of every source whose folder is in place (complete by construction)."""
        if not self.store_dir.is_dir():
            return set()
        return {p.name for p in self.store_dir.iterdir() if p.is_dir() and _is_sha256(p.name)}

    def source_rows(self) -> list[dict[str, Any]]:
        """Every source row: the analysed ones, then the failed ones not analysed since."""
        done = [self._read_row(self.source_dir(sha) / f"{SOURCE_TABLE}.parquet") for sha in sorted(self.done())]
        done = [row for row in done if row]
        paths = {row["path"] for row in done}
        failed_dir = self.root / FAILED
        failed = [self._read_row(p) for p in sorted(failed_dir.glob("*.parquet"))] if failed_dir.is_dir() else []
        return done + [row for row in failed if row and row["path"] not in paths]

    def stamps(self) -> dict[FileStamp, str]:
        """File stamp -> SHA-256 of the analysed sources: a re-run skips them without reading them."""
        out: dict[FileStamp, str] = {}
        for row in self.source_rows():
            if row["status"] == DONE and row["mtime_ns"] is not None:
                out[FileStamp(row["path"], row["size"], row["mtime_ns"])] = row["sha256"]
        return out

    @staticmethod
    def _read_row(path: Path) -> dict[str, Any] | None:
        try:
            rows = pq.read_table(path, schema=SOURCE_SCHEMA).to_pylist()
        except (OSError, pa.ArrowInvalid):
            return None
        return rows[0] if rows else None

    # ---- writing -----------------------------------------------------------------------

    def write_source(self, row: dict[str, Any], tables: dict[str, bytes], report: str | None) -> bool:
        """Put one analysed source in place; False when the store already holds that SHA-256
        (the same file twice in one fleet, or a second client racing this one)."""
        sha = row["sha256"]
        final = self.source_dir(sha)
        if final.exists():
            return False
        if report is not None:
            write_atomically(self.report_path(sha), report.encode("utf-8"))
        staging = Path(tempfile.mkdtemp(prefix=f"{sha[:16]}.", dir=self.root / STAGING))
        try:
            for name in TABLES:
                (staging / f"{name}.parquet").write_bytes(tables[name])
            pq.write_table(pa.Table.from_pylist([row], schema=SOURCE_SCHEMA), staging / f"{SOURCE_TABLE}.parquet")
            try:
                os.rename(staging, final)
            except OSError:
                if final.exists():  # another writer got there first: theirs is as good as ours
                    return False
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.failure_path(row["path"]).unlink(missing_ok=True)
        return True

    def write_failure(self, row: dict[str, Any]) -> None:
        """Record a source that could not be analysed (replacing an earlier failure of that path)."""
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist([row], schema=SOURCE_SCHEMA), sink)
        write_atomically(self.failure_path(row["path"]), sink.getvalue().to_pybytes())


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _is_sha256(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def parquet_bytes(table: pa.Table) -> bytes:
    """A table as Parquet file bytes (what a worker sends back to be written by the client)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()
