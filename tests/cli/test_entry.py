"""The console script's entry point: which command lines start the fleet's fork server early, and
the quick exit that must lose nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from callstack_forensics.cli.entry import starts_a_local_fleet


@pytest.mark.parametrize("args", [
    ["fleet", "a.raw", "-o", "case"],
    ["fleet", "run", "a.raw", "-o", "case", "--workers", "2"],
    ["fleet", "/cases/*.raw", "-o", "case", "--symbols", "syms"],
])
def test_a_local_fleet_run_starts_the_server_first(args):
    assert starts_a_local_fleet(args)


@pytest.mark.parametrize("args", [
    [], ["fleet"], ["analyze", "a.raw"], ["fleet", "query", "case", "SELECT 1"], ["fleet", "rare", "case"],
    ["fleet", "report", "case"], ["fleet", "export", "case"], ["fleet", "a.raw", "-o", "case", "--help"],
    ["fleet", "a.raw", "-o", "case", "--scheduler", "tcp://10.0.0.5:8786"],
    ["fleet", "a.raw", "-o", "case", "--scheduler=tcp://10.0.0.5:8786"], ["--version"],
])
def test_anything_else_goes_straight_to_the_cli(args):
    assert not starts_a_local_fleet(args)


def test_the_quick_exit_still_runs_the_finalizers_of_garbage_in_reference_cycles(tmp_path):
    """Garbage that only the cycle collector frees has its finalizer run at exit, as at a normal
    exit: the handler collects before it freezes (a bare freeze would skip it)."""
    out = tmp_path / "finalized.txt"
    script = (
        "import os\n"
        "from callstack_forensics.process_life import freeze_at_exit\n"
        "freeze_at_exit()\n"
        "class Holder:\n"
        "    def __del__(self):\n"
        f"        fd = os.open({str(out)!r}, os.O_WRONLY | os.O_CREAT)\n"
        "        os.write(fd, b'finalized'); os.close(fd)\n"
        "h = Holder(); h.me = h\n"
        "del h\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert out.read_text() == "finalized"


def test_the_collector_is_back_on_after_the_start_up_imports():
    import gc

    from callstack_forensics.process_life import collector_paused

    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # as the caller had it
    finally:
        gc.enable()


def test_the_quick_exit_is_registered_once_however_often_it_is_asked_for():
    """A plugin asks at every run; a process that ran it three times collects once at exit."""
    script = (
        "import gc, os\n"
        "collect = gc.collect\n"
        "def counting(*args):\n"
        "    os.write(2, b'collect\\n')\n"
        "    return collect(*args)\n"
        "gc.collect = counting\n"
        "from callstack_forensics.process_life import freeze_at_exit\n"
        "for _ in range(3):\n"
        "    freeze_at_exit()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["collect"]
