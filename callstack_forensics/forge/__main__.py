"""``python -m callstack_forensics.forge SCENARIO.toml -o OUT.raw [--isf FILE] [--ram SIZE] [--threads-scale N]``."""

from __future__ import annotations

import argparse
import sys

from . import FORGE_ERRORS, forge


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m callstack_forensics.forge", description=__doc__)
    parser.add_argument("scenario", help="a scenario file (samples/scenarios/*.toml)")
    parser.add_argument("-o", "--output", required=True, help="the raw image to write")
    parser.add_argument("--isf", help="another real kernel symbol table (ISF .json or .json.xz) instead of the default (Windows 10 22H2)")
    parser.add_argument("--threads-scale", type=int, default=1, help="give every process N times its threads")
    parser.add_argument("--ram", default="4G", help="physical memory of the machine (the image's size, written sparse)")
    args = parser.parse_args(argv)
    try:
        result = forge(args.scenario, args.output, args.isf, threads_scale=args.threads_scale, ram=args.ram)
    except FORGE_ERRORS as exc:
        print(f"forge: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    print(f"symbols: {result.symbols}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
