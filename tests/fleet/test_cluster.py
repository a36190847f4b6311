"""The fleet on a real Dask cluster (a scheduler and two workers started by the test) over forged
images, real minidumps and a corrupt file: what lands in the store, what fails, what a killed
worker's task becomes, what prevalence says, and what a second run does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from rich.console import Console

from callstack_forensics.analysis.fingerprint import sha256_file
from callstack_forensics.cli import common
from callstack_forensics.fleet.prevalence import open_store, query
from callstack_forensics.fleet.runner import run_fleet
from callstack_forensics.fleet.store import CaseStore, FileStamp
from callstack_forensics.fleet.task import SourceJob
from callstack_forensics.forge import forge
from callstack_forensics.forge.scenario import load_scenario
from tests.plugins.conftest import CLI, REPO

from .conftest import ATTACK, BENIGN

pytestmark = pytest.mark.slow
SCENARIOS = REPO / "samples" / "scenarios"


class KillOnFirstStart:
    """Kills the worker process that starts ``target`` the first time (SIGKILL, mid-task)."""

    def __init__(self, target: Path) -> None:
        self.target = str(target.resolve())
        self.starts: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        self.killed: int | None = None

    def begin(self, total: int, already: int) -> None:
        pass

    def started(self, path: str, worker: str, pid: int) -> None:
        with self.lock:
            self.starts.append((path, pid))
            if path == self.target and self.killed is None:
                self.killed = pid
                os.kill(pid, signal.SIGKILL)

    def finished(self, outcome) -> None:
        pass


@pytest.fixture(scope="module")
def first_run(cluster, fleet, tmp_path_factory):
    from distributed import Client

    case = tmp_path_factory.mktemp("case") / "acme"
    cache = tmp_path_factory.mktemp("volcache")
    opts = common.RunOptions(symbols=fleet.symbols, cache_dir=cache)
    observer = KillOnFirstStart(fleet.benign[0])
    sources = [*fleet.good, fleet.corrupt]
    with Client(cluster.address, timeout="20s") as client:
        result = run_fleet(client, sources, CaseStore(case), SourceJob(FileStamp("", 0, 0), opts, 600.0), observer)
    return case, opts, observer, result


def findings_key(rows) -> list[tuple]:
    return sorted((r["rule_id"], r["pid"], r["tid"], tuple(r["frames"])) for r in rows)


def test_every_good_source_lands_and_the_corrupt_one_is_recorded_failed(first_run, fleet):
    case, _, _, result = first_run
    store = CaseStore(case)
    assert store.done() == {sha256_file(p) for p in fleet.good}
    assert (result.analysed, result.failed, result.already) == (len(fleet.good), 1, 0)
    failed = [r for r in store.source_rows() if r["status"] == "failed"]
    assert [r["path"] for r in failed] == [str(fleet.corrupt.resolve())]
    assert failed[0]["error"]
    hosts = {r["host"]: r["host_origin"] for r in store.source_rows() if r["status"] == "done"}
    assert {name for name, _ in BENIGN} | {ATTACK[0]} <= set(hosts)
    assert all(hosts[name] == "environment" for name, _ in [*BENIGN, ATTACK])
    assert hosts["AJGO"] == "environment"  # the real Breakpad dump holds its process's environment block
    assert hosts["breakpad_write_av_non_canonical"] == "file name"  # this one holds no PEB: the file names it


def test_a_killed_workers_task_is_retried_and_lands(first_run, fleet):
    _, _, observer, _ = first_run
    target = str(fleet.benign[0].resolve())
    assert observer.killed is not None
    assert [path for path, _ in observer.starts].count(target) >= 2  # started, killed, started again
    assert sha256_file(fleet.benign[0]) in CaseStore(first_run[0]).done()


def test_findings_equal_analyze_per_source(first_run, fleet):
    case, opts, _, _ = first_run
    con = open_store(CaseStore(case))
    fired = 0
    for path in fleet.good:
        expected = common.run_analysis(path, opts, Console(quiet=True))
        rows = query(con, f"SELECT * FROM findings WHERE sha256 = '{sha256_file(path)}'")
        stored = [dict(zip(rows.columns, row)) for row in rows.rows]
        assert findings_key(stored) == sorted((f.rule_id, f.pid, f.tid, tuple(m.label() for m in f.frames))
                                              for f in expected.findings), path
        fired += len(stored)
    assert fired  # the attack scenario's rules fired


def test_the_malicious_stack_is_on_one_host_and_the_benign_stacks_on_every_benign_host(first_run):
    con = open_store(CaseStore(first_run[0]))
    rwx = query(con, "SELECT DISTINCT host, stack_hosts, fleet_hosts FROM findings "
                     "WHERE rule_name = 'Call Stack Frame in RWX Memory'").rows
    assert rwx == [(ATTACK[0], 1, 6)]
    benign = ", ".join(f"'{name}'" for name, _ in BENIGN)
    low, high = query(con, f"SELECT min(hosts), max(hosts) FROM stack_prevalence WHERE stack_id IN "
                           f"(SELECT stack_id FROM threads WHERE host IN ({benign}))").rows[0]
    assert low == len(BENIGN)
    assert high == len(BENIGN) + 1  # the base system under every scenario: on the attacked host too
    # the base system's processes that the attack scenario takes as they are (svchost.exe aside: the
    # benign desktop runs more service hosts than the base) have the same stacks on every image's host
    names = {p.name for p in load_scenario(SCENARIOS / "base" / "windows10.toml", with_base=False).processes}
    names -= {p.name for p in load_scenario(SCENARIOS / f"{ATTACK[1]}.toml", with_base=False).processes} | {"svchost.exe"}
    listed = ", ".join(f"'{name}'" for name in sorted(names))
    base = query(con, f"SELECT DISTINCT hosts FROM stack_prevalence WHERE stack_id IN (SELECT stack_id FROM threads "
                      f"WHERE host IN ({benign}) AND process_name IN ({listed}))").rows
    assert base == [(len(BENIGN) + 1,)]


def test_rare_lists_the_malicious_stack_first_with_its_marks(first_run):
    done = subprocess.run([str(CLI), "fleet", "rare", str(first_run[0]), "--json", "-n", "3"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout)[0]
    assert (first["hosts"], first["fleet_hosts"], first["processes"]) == (1, 6, ["notepad.exe"])
    assert first["unbacked"] and first["rwx"]
    assert [f["label"] for f in first["frames"] if f["unbacked"] and f["rwx"]] == ["Unbacked", "Unbacked"]


def test_export_is_every_event_with_its_host(first_run, tmp_path):
    out = tmp_path / "events.ndjson"
    done = subprocess.run([str(CLI), "fleet", "export", str(first_run[0]), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    con = open_store(CaseStore(first_run[0]))
    assert len(events) == query(con, "SELECT count(*) FROM events").rows[0][0] > 0
    assert {e["host"]["name"] for e in events} == {r[0] for r in query(con, "SELECT host FROM sources WHERE status = 'done'").rows}
    assert all(len(e["labels"]["source_sha256"]) == 64 and e["event"]["action"] for e in events)


def test_a_source_past_its_time_limit_is_failed_and_the_workers_go_on(cluster, fleet, tmp_path):
    from distributed import Client

    # A host of real size (146 processes, 3,464 threads: seconds of work however fast the engine
    # gets), so that only the time limit can end its task within the second.
    big = forge(SCENARIOS / "benign_desktop.toml", tmp_path / "host" / "big.raw", threads_scale=4,
                processes_scale=6, ram="8G").image
    store = CaseStore(tmp_path / "case")
    opts = common.RunOptions(symbols=[*fleet.symbols, big.parent / "symbols"], cache_dir=tmp_path / "cache")
    with Client(cluster.address, timeout="20s") as client:
        result = run_fleet(client, [big, fleet.dumps[0]], store, SourceJob(FileStamp("", 0, 0), opts, 1.0))
    errors = {Path(o.stamp.path).name: o.error for o in result.outcomes}
    assert errors[big.name] == "timed out after 1 s"
    assert errors[fleet.dumps[0].name] is None and store.done() == {sha256_file(fleet.dumps[0])}


def test_a_second_run_with_one_more_source_analyses_only_that_one(first_run, cluster, fleet):
    case, opts, _, _ = first_run
    before = CaseStore(case).done()
    cmd = [str(CLI), "fleet", *map(str, [*fleet.good, fleet.corrupt, fleet.extra]), "-o", str(case),
           "--scheduler", cluster.address, "--cache-dir", str(opts.cache_dir), "--json", "-q"]
    for folder in fleet.symbols:
        cmd += ["--symbols", str(folder)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr  # findings in the store
    summary = json.loads(done.stdout)
    assert (summary["analysed"], summary["already"], summary["failed"]) == (1, len(fleet.good), 1)
    assert CaseStore(case).done() - before == {sha256_file(fleet.extra)}
    assert summary["hosts"] == 7
    report = (case / "fleet.html").read_text()
    assert "Content-Security-Policy" in report and "WS-LATE" in report
    links = [line.split('href="')[1].split('"')[0] for line in report.splitlines() if 'href="reports/' in line]
    assert len(links) == len(fleet.good) + 1 and all((case / link).is_file() for link in links)
