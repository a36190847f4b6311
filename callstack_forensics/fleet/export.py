"""The store's events as ECS ndjson, for Elasticsearch or Timesketch.

Each event is written as ``analyze``/``events`` wrote it, plus the two fields a fleet needs and a
single source does not: ``host.name`` (ECS), unless the event has a host of its own, and
``labels.source_sha256``, the file it came from. Rows are streamed in batches: a fleet's events
need not fit in memory.
"""

from __future__ import annotations

import json
from typing import TextIO

import duckdb

BATCH = 5000


def export_events(con: duckdb.DuckDBPyConnection, out: TextIO) -> int:
    """Write every event of the store to ``out``; returns how many."""
    cursor = con.execute("SELECT document, host, sha256 FROM events ORDER BY host, sha256, timestamp")
    written = 0
    while rows := cursor.fetchmany(BATCH):
        for document, host, sha256 in rows:
            out.write(json.dumps(with_fleet_fields(json.loads(document), host, sha256), sort_keys=True) + "\n")
        written += len(rows)
    return written


def with_fleet_fields(event: dict, host: str, sha256: str) -> dict:
    if not isinstance(event.get("host"), dict):
        event["host"] = {"name": host}
    else:
        event["host"].setdefault("name", host)
    labels = event.get("labels") if isinstance(event.get("labels"), dict) else {}
    labels["source_sha256"] = sha256
    event["labels"] = labels
    return event
