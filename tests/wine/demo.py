"""`make demo` until the image forge lands: rebuild the stacks of a bundled Wine capture.

Builds the test programs (mingw-w64), runs them under Wine, writes full-memory minidumps
(cached under tests/wine/build/captures) and prints the stacks the engine rebuilds, with
the unbacked RWX frames highlighted.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("COLUMNS", "150")  # rich reads it at import: tables as wide as the paths

from callstack_forensics.cli.app import build_app  # noqa: E402

DEMO_PROGRAMS = ("shellcode", "rwx_syscall")


def main() -> int:
    from tests.wine.capture import capture_all

    captures = capture_all()
    status = 0
    for name in DEMO_PROGRAMS:
        capture = captures.get(name)
        if capture is None:
            print(f"demo: no capture for {name}", file=sys.stderr)
            status = 2
            continue
        dump = capture.directory / "full.dmp"
        print(f"\n=== {name}: callstack-forensics stacks {dump}\n", flush=True)
        try:
            build_app()(["stacks", str(dump)], standalone_mode=False)
        except SystemExit as exc:  # typer exits with the command's code
            status = max(status, int(exc.code or 0))
    return status


if __name__ == "__main__":
    sys.exit(main())
