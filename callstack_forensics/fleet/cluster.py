"""Where the fleet's tasks run: a Dask cluster started here for the run, or one already running.

The default is a local cluster sized to the machine: one single-threaded worker process per core,
since the analysis is Python and holds the GIL (threads would take turns, processes run side by
side). ``--scheduler tcp://HOST:PORT`` connects to an existing cluster instead; its workers must
have this package installed and see the sources at the same paths.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from distributed import Client

CONNECT_TIMEOUT = "10s"


class ClusterError(Exception):
    """The cluster cannot be reached or started; the message says which and why."""


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """``scheduler`` None: a local cluster of ``workers`` processes (default: one per usable core)."""

    scheduler: str | None = None
    workers: int | None = None
    memory_limit: str = "auto"


def usable_cores() -> int:
    """The cores this process may run on (a container's or taskset's share, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def connect(spec: ClusterSpec) -> Iterator["Client"]:
    """A client on the cluster, closed (and a local cluster shut down) on the way out, even on Ctrl-C.
    Dask is imported here, not at the top: ``fleet query`` and the rest of the CLI never need it."""
    from distributed import Client, LocalCluster

    if spec.scheduler:
        try:
            client = Client(spec.scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(f"--scheduler {spec.scheduler}: cannot connect ({exc})") from exc
        try:
            yield client
        finally:
            client.close()
        return
    workers = spec.workers or usable_cores()
    with _forked_from_a_warm_server(), _local_worker_config():  # for the cluster's life: a replaced worker too
        try:
            with sigint_ignored():
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                       memory_limit=spec.memory_limit, silence_logs=logging.ERROR)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ClusterError(f"cannot start a local Dask cluster of {workers} workers ({exc})") from exc
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """Start the workers with Ctrl-C ignored: the terminal sends it to the whole process group, and
    the client alone should answer it (it cancels the tasks and shuts the cluster down); a worker
    process inherits the ignored signal and Python leaves an ignored SIGINT alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# What Dask preloads in its own fork server (distributed.versions' required packages)
DASK_PRELOAD = ("distributed", "dask", "msgpack", "cloudpickle", "tornado", "toolz")
# The server's preparation (imports, warm caches, collector), first; Dask's list stays after it, a
# no-op unless the preparation failed to import
WORKER_PRELOAD = ("callstack_forensics.fleet.worker_server",)


def start_worker_server() -> bool:
    """Start the fork server the local workers will come from, importing Dask and the analysis in
    it, and return at once (False where the platform has none): called first thing in a run, its
    imports overlap the client's own start instead of preceding the cluster's.

    Why a fork server: a worker started fresh ("spawn", Dask's default) imports Dask, this package
    and Volatility before its first task, a second or two per worker on every run (and again for
    each worker a crash replaces); on a fleet of small sources that was a third of the run. A fork
    server is a single-threaded process started once for the run: forking from it is as safe as
    spawning (never a fork of this multi-threaded client), and each worker starts with the imports
    done. It is started with Ctrl-C ignored, as the workers must be (see :func:`sigint_ignored`).

    Dask sets its own preload list on the fork server when it first asks for the context, but a
    list only counts when the server starts: started here, with Dask's list and ours, it keeps both."""
    import multiprocessing
    from multiprocessing import forkserver

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    multiprocessing.get_context("forkserver").set_forkserver_preload([*WORKER_PRELOAD, *DASK_PRELOAD])
    with sigint_ignored():
        forkserver.ensure_running()
    return True


@contextmanager
def _forked_from_a_warm_server() -> Iterator[None]:
    """Dask told to start its workers from the fork server (:func:`start_worker_server`), started
    here if the run did not start it earlier; spawned as before where there is none."""
    if not start_worker_server():
        yield
        return
    import dask

    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        yield


# A local cluster's processes run the analysis, which holds the GIL for seconds at a time, and
# nothing reads their diagnostics (no dashboard: ``dashboard_address=None``). Every periodic callback
# on a worker's event loop takes the GIL from the running task, so those that only feed a dashboard
# or a log are slowed or off: the statistical profile (the task's stack sampled every 10 ms: ~6% of
# the tasks' time on make bench's fleet), the event loop's health tick (every 20 ms, to warn when the
# loop is blocked, which a GIL-holding task always makes it: another ~4%), the system monitor's
# samples and the GIL contention probe (a thread polling every 1 ms where gilknocker is installed).
# Heartbeats and the memory monitor (which enforces --memory-limit) keep Dask's own pace. A cluster
# reached with --scheduler keeps its own configuration.
LOCAL_WORKER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "1s",
    "distributed.admin.system-monitor.gil.enabled": False,
}


@contextmanager
def _local_worker_config() -> Iterator[None]:
    """The local workers' configuration; a Nanny hands its worker the configuration it was made with."""
    import dask

    with dask.config.set(LOCAL_WORKER_CONFIG):
        yield


def describe(client: "Client") -> str:
    """``2 workers, 2 threads at tcp://127.0.0.1:8786`` for the terminal and the report."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    threads = sum(w.get("nthreads", 0) for w in workers.values())
    return f"{len(workers)} workers, {threads} threads at {info.get('address', '?')}"
