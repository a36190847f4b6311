"""The ``fleet`` run end to end: check the inputs, start or reach the cluster, run, report, summarise.

Everything a person can get wrong (a source that names nothing, a missing --symbols folder, a case
folder that cannot be made, a scheduler that does not answer) is checked before any task starts and
is one clear error (exit 2); a source that fails once the run is going is that source's row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from ..fleet.cluster import ClusterSpec, connect, describe, start_worker_server
from ..fleet.inputs import expand
from ..fleet.prevalence import fleet_hosts, open_store
from ..fleet.report import write_fleet_report
from ..fleet.runner import FleetResult, run_fleet
from ..fleet.store import FLEET_REPORT, CaseStore, FileStamp
from ..fleet.task import SourceJob
from . import common
from .fleet_progress import RichFleetProgress
from ..wording import plural


def run_case(arguments: list[str], case_dir: Path, opts: common.RunOptions, scheduler: str | None,
             workers: int | None, timeout: float | None, with_reports: bool, console: Console) -> dict[str, Any]:
    """Run the fleet; returns the summary that ``--json`` prints."""
    common.check_folders(opts)
    if scheduler is None:
        start_worker_server()  # the local workers' imports start now, beside the client's own work
    common.analysis_options(opts)  # the rules load here, once, before a cluster is started for nothing
    inputs = expand(arguments, exclude=case_dir)
    store = CaseStore(case_dir)
    store.create()
    job = SourceJob(FileStamp("", 0, 0), opts, timeout, with_reports)
    with connect(ClusterSpec(scheduler, workers)) as client:
        where = describe(client)
        console.print(f"fleet: {plural(len(inputs.files), 'source')} on {escape(where)}"
                      + (f" ({plural(inputs.ignored, 'other file')} in the folders ignored)" if inputs.ignored else ""),
                      soft_wrap=True, highlight=False)
        with RichFleetProgress(console) as progress:
            result = run_fleet(client, inputs.files, store, job, progress)
    con = open_store(store)
    write_fleet_report(case_dir, con, case_dir / FLEET_REPORT)
    summary = summarise(result, store, con, where)
    print_summary(console, summary, case_dir / FLEET_REPORT)
    return summary


def summarise(result: FleetResult, store: CaseStore, con: Any, where: str) -> dict[str, Any]:
    findings, hosts_with = con.execute("SELECT count(*), count(DISTINCT host) FROM findings").fetchone()
    return {"case_dir": str(store.root.resolve()), "cluster": where, "analysed": result.analysed,
            "already": result.already, "failed": result.failed, "seconds": round(result.seconds, 2),
            "sources_per_minute": round(result.sources_per_minute, 2), "hosts": fleet_hosts(con),
            "findings": int(findings), "hosts_with_findings": int(hosts_with),
            "task_seconds": round(sum(o.seconds for o in result.outcomes), 2), "peak_rss_per_worker": result.peak_rss, "report": str((store.root / FLEET_REPORT).resolve()),
            "failures": [{"path": o.stamp.path, "error": o.error} for o in result.outcomes if o.status == "failed"]}


def print_summary(console: Console, summary: dict[str, Any], report: Path) -> None:
    """The run in three lines; the report's path as the person gave the case folder."""
    peak = max(summary["peak_rss_per_worker"].values(), default=0)
    console.print(f"{plural(summary['analysed'], 'source')} analysed, {summary['failed']} failed, "
                  f"{summary['already']} already in the store; {summary['seconds']:.1f} s"
                  + (f", {summary['sources_per_minute']:.1f} sources/min" if summary["analysed"] else "")
                  + (f", peak memory per worker {peak / 2**20:.0f} MiB" if peak else ""), soft_wrap=True, highlight=False)
    console.print(f"{summary['findings']} findings on {summary['hosts_with_findings']} of "
                  f"{plural(summary['hosts'], 'host')}; fleet report: {escape(str(report))}",
                  soft_wrap=True, highlight=False)
    for failure in summary["failures"]:
        console.print(f"[red]failed:[/red] {escape(failure['path'])}: {escape(failure['error'] or '')}", soft_wrap=True)
