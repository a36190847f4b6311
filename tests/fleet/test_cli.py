"""The fleet commands as a person types them: mistakes are one clear line and exit 2, a local
cluster run records a bad file and goes on, and the fleet report escapes what images say."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from callstack_forensics.fleet.prevalence import open_store
from callstack_forensics.fleet.report import render_fleet_report
from callstack_forensics.fleet.store import CaseStore, parquet_bytes
from callstack_forensics.fleet.tables import SCHEMAS, TABLES
from tests.plugins.conftest import CLI, SHARED

DUMP = SHARED / "realdata" / "breakpad_tiny-exe-fastfail.dmp"


def fleet(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), "fleet", *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd)


def assert_usage_error(done: subprocess.CompletedProcess, message: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_mistakes_are_one_clear_line_and_exit_2(tmp_path):
    case = tmp_path / "case"
    assert_usage_error(fleet(tmp_path / "missing.raw", "-o", case), "missing.raw: no such file or folder")
    assert_usage_error(fleet(DUMP, "-o", case, "--symbols", tmp_path / "nope"), "--symbols")
    assert_usage_error(fleet(tmp_path / "*.vmem", "-o", case), "the pattern matches no file")
    (tmp_path / "file").write_text("x")
    assert_usage_error(fleet(DUMP, "-o", tmp_path / "file" / "case"), "cannot make the case folders")
    assert_usage_error(fleet("query", tmp_path, "SELECT 1"), "not a fleet case folder")
    assert_usage_error(fleet("rare", tmp_path / "nope"), "not a fleet case folder")
    assert not case.exists()


def test_an_unreachable_scheduler_is_exit_2(tmp_path):
    done = fleet(DUMP, "-o", tmp_path / "case", "--scheduler", "tcp://127.0.0.1:9")
    assert_usage_error(done, "--scheduler tcp://127.0.0.1:9: cannot connect")


@pytest.mark.slow
def test_a_local_cluster_run_records_a_bad_file_and_goes_on(tmp_path):
    bad = tmp_path / "in" / "zeros.dmp"
    bad.parent.mkdir()
    bad.write_bytes(b"MDMP" + bytes(60))  # a minidump header and nothing after it
    case = tmp_path / "case"
    done = fleet(DUMP, bad.parent, "-o", case, "--workers", "1", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["analysed"], summary["failed"], summary["hosts"]) == (1, 1, 1)
    assert summary["failures"][0]["path"] == str(bad.resolve()) and summary["failures"][0]["error"]
    assert "failed" in done.stderr and "1 source analysed" in done.stderr
    again = fleet(DUMP, "-o", case, "--workers", "1", "--json")
    assert json.loads(again.stdout)["already"] == 1 and json.loads(again.stdout)["analysed"] == 0
    query = fleet("query", case, "SELECT host, host_origin, status FROM sources ORDER BY status", "--json")
    assert json.loads(query.stdout) == [{"host": "AJGO", "host_origin": "environment", "status": "done"},
                                        {"host": None, "host_origin": None, "status": "failed"}]
    assert_usage_error(fleet("query", case, "SELEC 1"), "syntax error")


def test_the_fleet_report_escapes_what_an_image_says(tmp_path):
    store = CaseStore(tmp_path / "case")
    store.create()
    hostile = '<script>alert("x")</script>'
    row = {"sha256": "ab" * 32, "host": hostile, "host_origin": "environment", "path": f"/x/{hostile}.raw",
           "size": 1, "mtime_ns": 1, "status": "done", "kind": "memory image", "windows": hostile,
           "report": f"reports/{'ab' * 32}.html"}
    store.write_source(row, {name: parquet_bytes(SCHEMAS[name].empty_table()) for name in TABLES}, "<p>case</p>")
    html = render_fleet_report(store, open_store(store))
    assert hostile not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "script-src &#39;none&#39;" in html and "<script" not in html  # the CSP: no script may run
    assert f'href="reports/{"ab" * 32}.html"' in html
    assert not [line for line in html.splitlines() if "http://" in line or "https://" in line]


@pytest.mark.slow
def test_ctrl_c_keeps_what_finished_and_the_same_command_resumes(fleet, tmp_path):
    # one worker and five sources, the biggest last: seconds of work still ahead when the first is done
    sources = [*fleet.benign[1:], fleet.attack, fleet.extra, fleet.benign[0]]
    cmd = [str(CLI), "fleet", *map(str, sources), "-o", str(tmp_path / "case"), "--workers", "1",
           "--cache-dir", str(tmp_path / "cache")] + [arg for s in fleet.symbols for arg in ("--symbols", str(s))]
    # Ctrl-C as a terminal's foreground job gets it: a test suite started in the background of a
    # non-interactive shell (`make test &`, nohup) runs with SIGINT ignored, as POSIX shells start
    # asynchronous commands, and a child inherits that, so the CLI is given the default back
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_sigint_default)
    try:
        deadline = time.monotonic() + 300
        for line in proc.stderr:  # the first source's "done" line, then Ctrl-C as a terminal sends it
            if line.startswith("done") or time.monotonic() > deadline:
                break
        os.killpg(proc.pid, signal.SIGINT)
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert proc.returncode == 130
    assert "run the same command again to resume" in rest and "Traceback" not in rest
    kept = CaseStore(tmp_path / "case").done()
    assert 1 <= len(kept) < len(sources)
    again = subprocess.run(cmd + ["--json", "-q"], capture_output=True, text=True, timeout=600)
    summary = json.loads(again.stdout)
    assert (summary["already"], summary["analysed"]) == (len(kept), len(sources) - len(kept))


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_local_workers_start_from_the_fork_server_with_the_analysis_imported(tmp_path):
    """The local cluster's workers are forked from a fork server that imported the analysis once
    (cluster.WORKER_PRELOAD), not spawned as fresh interpreters that each import it again: checked
    on a worker before it has run any task, in a process of its own as the CLI would start it. The
    worker inherits the server's imports frozen (its collector skips them) and the parser built,
    and does not sample its tasks for a dashboard the local cluster does not have, nor tick its
    event loop every 20 ms (each tick takes the GIL from the running task)."""
    script = tmp_path / "probe.py"
    script.write_text(
        "import json, sys\n"
        "from callstack_forensics.fleet.cluster import ClusterSpec, connect\n"
        "def probe(dask_worker=None):\n"
        "    import gc, multiprocessing, sys\n"
        "    from callstack_forensics.eql.parser import _lark\n"
        "    return [multiprocessing.get_start_method(allow_none=True),\n"
        "            all(m in sys.modules for m in ('volatility3.framework', 'callstack_forensics.fleet.task')),\n"
        "            gc.get_freeze_count() > 10000, _lark.cache_info().currsize == 1,\n"
        "            'profile' in dask_worker.periodic_callbacks,\n"
        "            dask_worker.periodic_callbacks['tick'].callback_time]\n"
        "if __name__ == '__main__':\n"
        "    with connect(ClusterSpec(workers=1)) as client:\n"
        "        print(json.dumps(list(client.run(probe).values())))\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    [[method, preloaded, frozen, parser_built, profiled, tick_ms]] = json.loads(done.stdout)
    assert (method, preloaded, frozen, parser_built, profiled) == ("forkserver", True, True, True, False)
    assert tick_ms >= 1000
