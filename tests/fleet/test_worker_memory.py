"""A fleet worker analyses image after image in one process: what a finished image held must go.

Volatility's class-wide ``lru_cache``s key on layers, so without ``release_volatility_caches`` a
worker kept every finished image's context (its symbol tables: ~530,000 objects, ~190 MiB, after six small
images). Checked in a process of its own, as a worker is, so nothing else the test session holds
is counted."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import gc, json, sys
from pathlib import Path
from callstack_forensics.cli import common
from callstack_forensics.fleet.store import FileStamp
from callstack_forensics.fleet.task import SourceJob, run_source
from volatility3.framework.objects.templates import ObjectTemplate
from volatility3.framework.layers.intel import Intel

image, symbols = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
opts = common.RunOptions(symbols=symbols, cache_dir=Path(sys.argv[1]).parent / "volcache")
outcome = run_source(SourceJob(FileStamp.of(image), opts))
gc.collect()
templates = sum(isinstance(o, ObjectTemplate) for o in gc.get_objects())
print(json.dumps({"status": outcome.status, "error": outcome.error, "templates": templates,
                  "translations_cached": Intel._translate_entry.cache_info().currsize}))
"""


def test_a_worker_keeps_nothing_of_an_image_it_finished(fleet, tmp_path):
    image = fleet.attack
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    done = subprocess.run([sys.executable, str(probe), str(image), *map(str, fleet.symbols)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["status"] == "done", result["error"]
    assert (result["templates"], result["translations_cached"]) == (0, 0)


def test_only_caches_are_emptied_and_only_volatilitys(monkeypatch):
    """What is emptied: every lru_cache of Volatility's classes and functions, nothing else."""
    import functools

    from callstack_forensics.volatility.caches import _volatility_caches, release_volatility_caches
    from volatility3.framework.layers import intel

    ours = functools.lru_cache(maxsize=4)(lambda x: x)
    ours(1)
    intel.Intel._get_valid_table.cache_clear()
    found = _volatility_caches(dict(sys.modules))
    assert intel.Intel._translate_entry in found and intel.Intel._get_valid_table in found
    assert all(c.__module__.startswith("volatility3.") for c in found)
    assert release_volatility_caches() == len(found)
    assert ours.cache_info().currsize == 1
