"""``python -m tests.fuzz`` (``make fuzz``): the mutation fuzzer, seeded and bounded.

    python -m tests.fuzz [--engine N] [--images N] [--seed S] [--budget-seconds T]
    python -m tests.fuzz --engine-case I --seed S      # replay one engine case, traceback and all
    python -m tests.fuzz --images-case I --seed S      # replay one image case (tests.fuzz.images.replay)

Runs N engine cases (engine.py) and, when ``tests.fuzz.images`` exists, N mutated images through
the Volatility plugins; prints the counts; exits 1 when anything crashed or hung. The budget is
shared: the engine half gets its share of the time by case count, the images what is left.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time

from rich.console import Console

from .counts import FuzzCounts
from .engine import replay, run_engine

DEFAULT_ENGINE = 100_000
DEFAULT_IMAGES = 1_000
DEFAULT_BUDGET = 3600.0
ENGINE_SHARE = 0.5  # of the budget, when the image half runs too


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--engine", type=int, default=DEFAULT_ENGINE, help="engine cases (default %(default)s)")
    parser.add_argument("--images", type=int, default=DEFAULT_IMAGES, help="mutated images (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="the run's seed (default %(default)s)")
    parser.add_argument("--budget-seconds", type=float, default=DEFAULT_BUDGET,
                        help="stop starting cases after this long (default %(default)s)")
    parser.add_argument("--engine-case", type=int, default=None, metavar="I",
                        help="replay engine case I of --seed, uncaught, and exit")
    parser.add_argument("--images-case", type=int, default=None, metavar="I",
                        help="replay image case I of --seed and exit")
    args = parser.parse_args(argv)
    console = Console()
    if args.engine_case is not None:
        console.print(f"engine case {args.engine_case} of seed {args.seed}: {replay(args.seed, args.engine_case)!r}")
        return 0
    if args.images_case is not None:
        if _images_runner() is None:
            parser.error("tests.fuzz.images is not there")
        outcome = importlib.import_module("tests.fuzz.images").replay(args.seed, args.images_case)
        console.print(f"image case {args.images_case} of seed {args.seed}: {outcome!r}")
        return 0
    images = _images_runner() if args.images > 0 else None
    start = time.monotonic()
    end = start + args.budget_seconds
    total = FuzzCounts()
    if args.engine > 0:
        engine_end = start + args.budget_seconds * ENGINE_SHARE if images is not None else end
        counts = run_engine(args.engine, args.seed, engine_end)
        counts.print(console, f"engine: {args.engine:,} cases asked, seed {args.seed}")
        total = total.merge(counts)
    if images is not None:
        counts = images(args.images, args.seed, end)
        counts.print(console, f"images: {args.images:,} images asked, seed {args.seed}")
        total = total.merge(counts)
    elif args.images > 0:
        console.print("images: tests.fuzz.images is not there yet; engine cases only")
    console.print(f"crashes: {len(total.crashes)}  hangs: {len(total.hangs)}  "
                  f"({total.tried:,} cases in {time.monotonic() - start:,.0f} s)")
    return 0 if total.ok and total.accounted else 1


def _images_runner():
    """``tests.fuzz.images.run_images`` when that module exists (it comes with the image fuzzer)."""
    if importlib.util.find_spec("tests.fuzz.images") is None:
        return None
    return importlib.import_module("tests.fuzz.images").run_images


if __name__ == "__main__":
    sys.exit(main())
