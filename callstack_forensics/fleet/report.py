"""The fleet report: one self-contained HTML file over the whole case store.

The same rules as the case report (``callstack_forensics.report``): every string comes from an
image and is hostile, so jinja2 autoescapes everything, undefined names fail the render, nothing is
fetched, and a Content-Security-Policy forbids scripts altogether (this page has none). Links to
each source's own case report are relative (``reports/<sha256>.html``), so the case folder can be
zipped and opened anywhere.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

import duckdb
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from .. import __version__
from .prevalence import fleet_hosts, query, rare_stacks
from .store import CaseStore, write_atomically

CSP = ("default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
       "form-action 'none'")
RARE_SHOWN = 25
SEVERITY_ORDER = "CASE lower(severity) WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 WHEN 'low' THEN 3 ELSE 4 END"


@dataclass(slots=True)
class RuleGroup:
    """One rule's findings across the fleet."""

    rule_name: str
    severity: str
    hosts: int
    rows: list[dict[str, Any]] = field(default_factory=list)


def render_fleet_report(store: CaseStore, con: duckdb.DuckDBPyConnection) -> str:
    env = Environment(loader=PackageLoader("callstack_forensics.fleet", "templates"),
                      autoescape=select_autoescape(default_for_string=True, default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    sources = _sources(store, con)
    return env.get_template("fleet.html.j2").render(
        csp=CSP, version=__version__, generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"),
        case=str(store.root), sources=sources, hosts=fleet_hosts(con),
        done=sum(1 for s in sources if s["status"] == "done"), failed=sum(1 for s in sources if s["status"] != "done"),
        groups=_groups(con), rare=rare_stacks(con, RARE_SHOWN), threads=_count(con, "threads"),
        findings=_count(con, "findings"))


def _sources(store: CaseStore, con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The store's source rows as ``open_store`` read them (each source's file read once per run)."""
    result = query(con, "SELECT * FROM sources")
    rows = [dict(zip(result.columns, values)) for values in result.rows]
    for row in rows:
        report = row.get("report")
        row["link"] = report if report and (store.root / report).is_file() else None
    return sorted(rows, key=lambda r: (r["status"] != "failed", r["host"] or "", r["path"]))


def _groups(con: duckdb.DuckDBPyConnection) -> list[RuleGroup]:
    rows = con.execute(f"""
        SELECT rule_name, severity, host, process, pid, tid, frames, stack_shape, stack_hosts, fleet_hosts, sha256
        FROM findings ORDER BY {SEVERITY_ORDER}, rule_name, stack_hosts NULLS LAST, host, pid, tid""").fetchall()
    groups: dict[str, RuleGroup] = {}
    for rule, severity, host, process, pid, tid, frames, shape, stack_hosts, hosts, sha in rows:
        group = groups.setdefault(rule, RuleGroup(rule, severity, 0))
        group.rows.append({"host": host, "process": process, "pid": pid, "tid": tid, "frames": list(frames or []),
                           "shape": shape, "stack_hosts": stack_hosts, "fleet_hosts": hosts, "sha256": sha})
    for group in groups.values():
        group.hosts = len({r["host"] for r in group.rows})
    return list(groups.values())


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])



def write_fleet_report(case_dir: Path, con: duckdb.DuckDBPyConnection, target: Path) -> None:
    """Render and write through a temporary file, so a reader never sees half a report."""
    write_atomically(target, render_fleet_report(CaseStore(case_dir), con).encode("utf-8"))
