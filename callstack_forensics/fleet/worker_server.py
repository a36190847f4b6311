"""The local workers' fork server, prepared once (see ``cluster.start_worker_server``): it is the
first module the server imports, and each worker forked from it inherits what it did.

- It imports what a worker needs before its first task (Dask, the analysis, Volatility, the case
  report), with the collector paused during the imports (``process_life``).
- It builds the EQL grammar's parser tables (lark, ~0.05 s), which depend on nothing a run
  chooses; the rules a run loads are parsed with them per task, as ``analyze`` does.
- It registers the quick exit (``process_life``): the server ends when the CLI does, and a caller
  reading the CLI's output through a pipe waits for the server's end too. Workers forked from it
  end by ``os._exit`` (multiprocessing's own), so the handler never runs in them.
- Last, it moves everything imported into the collector's permanent generation, just before the
  server forks (CPython's advice for a process that forks without exec): a worker's full
  collections then skip the ~85,000 objects of Dask, Volatility and the analysis it inherited,
  instead of walking (and copying, page by page) all of them in every task. On ``make bench``'s
  8 sources the tasks' time added up went from ~9.7 s to ~9.0 s.
"""

from __future__ import annotations

import gc
import importlib

from ..process_life import collector_paused, freeze_at_exit
from .cluster import DASK_PRELOAD

# What a worker needs for a task; Dask's own first
NEEDED = (*DASK_PRELOAD, "volatility3.framework", "callstack_forensics.fleet.task",
          "callstack_forensics.volatility.session", "callstack_forensics.report")


def prepare() -> None:
    with collector_paused():
        for name in NEEDED:
            importlib.import_module(name)
        from ..eql.parser import warm_parser

        warm_parser()
    freeze_at_exit()
    gc.collect()
    gc.freeze()


prepare()
