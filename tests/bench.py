"""`make bench`: the speed figures the issues set targets for, printed and written to BENCHMARKS.md.

Benchmarks are measurements, never pass/fail tests. Sections:
- unwinder: frames per second on one core with the module cache warm, over the Wine
  captures (real compiled code, real Wine system DLLs);
- rules: rules x events per second, when the rule engine is present.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path

from callstack_forensics.context import ProcessContext, WalkOptions
from callstack_forensics.minidump import MinidumpMemory
from callstack_forensics.modules import ImageCache
from callstack_forensics.walker import walk_thread

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "tests" / "wine" / "build" / "captures"


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    target: str = ""

    def row(self) -> str:
        return f"| {self.name} | {self.value:,.0f} {self.unit} | {self.target} |"


def capture_dumps() -> list[Path]:
    dumps = sorted(CAPTURES.glob("*/full.dmp"))
    if dumps:
        return dumps
    from tests.wine.capture import capture_all  # builds and captures under Wine

    capture_all()
    return sorted(CAPTURES.glob("*/full.dmp"))


def bench_unwinder(dumps: list[Path], seconds: float = 3.0) -> Figure:
    """Walk every thread of every dump again and again, the image cache kept warm."""
    images = ImageCache()
    contexts = []
    for dump in dumps:
        memory = MinidumpMemory(dump)
        contexts.append((ProcessContext(memory, WalkOptions(), images), memory.threads()))
    for ctx, threads in contexts:  # warm-up: module parses and code pages
        for thread in threads:
            walk_thread(ctx, thread)
    frames = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for ctx, threads in contexts:
            ctx.cache._pages.clear()  # stack pages are read afresh each round, as for a new image
            for thread in threads:
                frames += len(walk_thread(ctx, thread).frames)
    elapsed = time.perf_counter() - start
    return Figure("unwinder frames per second (1 core, module cache warm)", frames / elapsed, "frames/s", ">= 20,000")


def bench_rules() -> Figure | None:
    try:
        from callstack_forensics.rules.bench import bench_rules as run
    except ImportError:
        return None
    result = run(300, 20000)
    value = float(result.get("rule_events_per_second", 0.0))
    return Figure("rules x events per second (300 rules, 20,000 events)", value, "rule-events/s")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}; Python {platform.python_version()}; {platform.system()} {platform.release()}"


def main() -> None:
    dumps = capture_dumps()
    figures = [bench_unwinder(dumps)]
    rules = bench_rules()
    if rules is not None:
        figures.append(rules)
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {machine()}",
        "",
        "Reproduce with `make bench` (it builds the Wine captures first if they are missing).",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        *[f.row() for f in figures],
        "",
    ]
    text = "\n".join(lines)
    print(text)
    (ROOT / "BENCHMARKS.md").write_text(text)


if __name__ == "__main__":
    main()
