"""Build forged images once per test session and run the real `vol` CLI on them (JSON renderer).

Images and plugin outputs are cached per (scenario, layout) for the session; the eight plugins of
an image run concurrently in subprocesses. Nothing here knows what the output should be: that is
derived from the scenario files in expectations.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from callstack_forensics.forge import ForgeResult, forge

PLUGINS = ("info", "pslist", "pstree", "threads", "vadinfo", "dlllist", "cmdline", "malfind", "handles")
VOL = Path(sys.executable).with_name("vol")


@dataclass
class VolOutput:
    plugin: str
    returncode: int
    rows: list
    stderr: str


@dataclass
class Forged:
    result: ForgeResult
    outputs: dict[str, Future] = field(default_factory=dict)

    def run(self, plugin: str) -> VolOutput:
        return self.outputs[plugin].result()


class ImageCache:
    """Session cache: (scenario path, layout path or None) -> built image and its plugin runs."""

    def __init__(self, root: Path, workers: int | None = None) -> None:
        self.root = root
        self.pool = ThreadPoolExecutor(max_workers=workers or max(2, os.cpu_count() or 2))
        self.images: dict[tuple[str, str | None], Forged] = {}
        self.lock = threading.Lock()

    def get(self, scenario: Path, isf: Path | None, plugins: tuple[str, ...] = PLUGINS) -> Forged:
        key = (str(scenario), str(isf) if isf else None)
        with self.lock:
            if key not in self.images:
                tag = (isf.name[:8] if isf else "default")
                out = self.root / f"{scenario.stem}-{tag}" / f"{scenario.stem}.raw"
                forged = Forged(forge(scenario, out, isf))
                forged.result.machine = None  # hundreds of images stay cached: keep plans, drop their memory
                for plugin in plugins:
                    forged.outputs[plugin] = self.pool.submit(run_vol, forged.result, plugin)
                self.images[key] = forged
            return self.images[key]

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def run_vol(result: ForgeResult, plugin: str) -> VolOutput:
    symbols = result.symbols.parents[2]
    # A cache of its own per run: Volatility's shared identifier cache races between concurrent runs and
    # keeps locations of symbol folders other test sessions have deleted.
    cache = result.image.parent / f"volcache-{plugin}"
    cache.mkdir(exist_ok=True)
    cmd = [str(VOL), "--offline", "-q", "-r", "json", "--cache-path", str(cache), "-s", str(symbols),
           "-f", str(result.image), f"windows.{plugin}"]
    for attempt in range(3):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            break
        except OSError:  # a spawn racing other threads can fail transiently (EFAULT); try again
            if attempt == 2:
                raise
    rows: list = []
    if proc.returncode == 0:
        try:
            rows = json.loads(proc.stdout)
        except json.JSONDecodeError:
            rows = []
    return VolOutput(plugin, proc.returncode, rows, proc.stderr)


def flatten(rows: list) -> list[dict]:
    """Tree rows (pstree) as a flat list."""
    out = []
    for row in rows:
        out.append(row)
        out.extend(flatten(row.get("__children", [])))
    return out
