"""The fleet's baseline as a command: the fleet's own task on each source in turn, in one process.

``python -m tests.bench_fleet_sequence --cache-dir DIR [--symbols DIR]... SOURCE...`` is what a
person would run instead of ``fleet`` if there were no cluster: one process that imports the
analysis once and analyses the sources one after another (hash, analysis, tables, case report,
exactly what a fleet task does). ``bench_fleet`` times it whole, from start to exit, as it times
the ``fleet`` command. It exits as the CLI does (``process_life``), and 1 if a source failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from callstack_forensics.process_life import freeze_at_exit


def main(argv: list[str]) -> int:
    freeze_at_exit()
    from callstack_forensics.cli import common
    from callstack_forensics.fleet.store import FileStamp
    from callstack_forensics.fleet.task import SourceJob, run_source

    parser = argparse.ArgumentParser()
    parser.add_argument("sources", nargs="+", type=Path)
    parser.add_argument("--symbols", action="append", type=Path, default=[])
    parser.add_argument("--cache-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    opts = common.RunOptions(symbols=args.symbols, cache_dir=args.cache_dir)
    failed = 0
    for source in args.sources:
        outcome = run_source(SourceJob(FileStamp.of(source), opts))
        if outcome.status != "done":
            print(f"{source}: {outcome.status}: {outcome.error}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
