"""SQL over the case store with DuckDB (embedded, no server): the tables, and how common each stack is.

Views every query can use:

- ``sources``, ``processes``, ``threads``, ``frames``, ``events``: the store's tables across sources.
- ``stack_prevalence``: per stack shape, on how many hosts, sources and threads it occurs, in which
  processes, and whether it holds an unbacked or RWX frame.
- ``process_stack_prevalence``: the same per (process name, stack shape): a stack normal in
  svchost.exe can be odd in notepad.exe.
- ``findings``: the findings with the prevalence of their thread's stack (``stack_hosts``,
  ``stack_threads``, ``process_stack_hosts``) and the fleet's host count (``fleet_hosts``).

Hosts are counted by name, so two captures of one machine are one host. The store is read as it
is when the connection opens; a fleet still running adds sources that the next query sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from .store import CaseStore, SOURCE_SCHEMA
from .tables import SCHEMAS

VIEWS = """
CREATE VIEW stack_prevalence AS
SELECT stack_id, any_value(stack_shape) AS stack_shape, count(DISTINCT host) AS hosts,
       count(DISTINCT sha256) AS sources, count(*) AS threads,
       list(DISTINCT process_name ORDER BY process_name) AS processes, max(frames) AS frames,
       bool_or(unbacked_frames > 0) AS unbacked, bool_or(rwx_frames > 0) AS rwx
FROM threads WHERE frames > 0 GROUP BY stack_id;

CREATE VIEW process_stack_prevalence AS
SELECT lower(process_name) AS process_name, stack_id, any_value(stack_shape) AS stack_shape,
       count(DISTINCT host) AS hosts, count(DISTINCT sha256) AS sources, count(*) AS threads
FROM threads WHERE frames > 0 GROUP BY lower(process_name), stack_id;

CREATE VIEW findings AS
SELECT f.*, s.hosts AS stack_hosts, s.threads AS stack_threads, p.hosts AS process_stack_hosts,
       (SELECT count(DISTINCT host) FROM sources WHERE status = 'done') AS fleet_hosts
FROM store_findings f
LEFT JOIN stack_prevalence s ON s.stack_id = f.stack_id
LEFT JOIN process_stack_prevalence p ON p.stack_id = f.stack_id AND p.process_name = lower(f.process);
"""

RARE = """
SELECT stack_id, stack_shape, hosts, sources, threads, processes, unbacked, rwx
FROM stack_prevalence
WHERE $process IS NULL OR stack_id IN (SELECT stack_id FROM threads WHERE lower(process_name) = lower($process))
ORDER BY hosts, (unbacked OR rwx) DESC, threads, stack_shape LIMIT $limit
"""

FRAME_MARKS = """
SELECT t.stack_id, f.frame_index, any_value(f.label) AS label, bool_or(f.unbacked) AS unbacked, bool_or(f.rwx) AS rwx
FROM frames f JOIN threads t USING (sha256, pid, tid)
WHERE t.stack_id IN (SELECT unnest($ids))
GROUP BY t.stack_id, f.frame_index ORDER BY t.stack_id, f.frame_index
"""


class QueryError(Exception):
    """DuckDB refused the SQL; the message is DuckDB's."""


def open_store(store: CaseStore) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the store's tables and the prevalence views defined over them."""
    con = duckdb.connect(":memory:")
    for name, schema in SCHEMAS.items():
        view = "store_findings" if name == "findings" else name
        _table_view(con, view, store.table_glob(name) if _any(store, name) else None, schema)
    _sources_view(con, store)
    for statement in VIEWS.split(";"):
        if statement.strip():
            con.execute(statement)
    return con


def _any(store: CaseStore, table: str) -> bool:
    return any((store.source_dir(sha) / f"{table}.parquet").is_file() for sha in store.done())


def _table_view(con: duckdb.DuckDBPyConnection, name: str, glob: str | None, schema: pa.Schema) -> None:
    if glob is None:  # an empty store still answers, with no rows, instead of "no files found"
        con.register(f"_{name}_empty", schema.empty_table())
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM _{name}_empty")
        return
    con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({_literal(glob)}, union_by_name = true)")


def _sources_view(con: duckdb.DuckDBPyConnection, store: CaseStore) -> None:
    rows = store.source_rows()
    con.register("_sources", pa.Table.from_pylist(rows, schema=SOURCE_SCHEMA))
    con.execute("CREATE VIEW sources AS SELECT * FROM _sources")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def query(con: duckdb.DuckDBPyConnection, sql: str) -> QueryResult:
    """Run ad-hoc SQL; DuckDB's own error (syntax, unknown column...) becomes a QueryError."""
    try:
        cursor = con.execute(sql)
        rows = cursor.fetchall() if cursor.description else []
    except duckdb.Error as exc:
        raise QueryError(str(exc).strip()) from exc
    columns = [d[0] for d in cursor.description] if cursor.description else []
    return QueryResult(columns, rows)


@dataclass(frozen=True, slots=True)
class MarkedFrame:
    label: str
    unbacked: bool
    rwx: bool


@dataclass(frozen=True, slots=True)
class RareStack:
    """A stack shape, how rarely it occurs, and its frames with the unbacked and RWX ones marked."""

    stack_id: str
    hosts: int
    sources: int
    threads: int
    processes: list[str]
    unbacked: bool
    rwx: bool
    frames: list[MarkedFrame]


def rare_stacks(con: duckdb.DuckDBPyConnection, limit: int = 20, process: str | None = None) -> list[RareStack]:
    """The stacks seen on the fewest hosts (then threads), rarest first."""
    rows = con.execute(RARE, {"limit": limit, "process": process}).fetchall()
    ids = [row[0] for row in rows]
    marks: dict[str, list[MarkedFrame]] = {i: [] for i in ids}
    if ids:
        for stack, _, label, unbacked, rwx in con.execute(FRAME_MARKS, {"ids": ids}).fetchall():
            marks[stack].append(MarkedFrame(label, bool(unbacked), bool(rwx)))
    return [RareStack(sid, hosts, sources, threads, list(procs), bool(unb), bool(rwx), marks[sid])
            for sid, _, hosts, sources, threads, procs, unb, rwx in rows]


def fleet_hosts(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT count(DISTINCT host) FROM sources WHERE status = 'done'").fetchone()[0])
