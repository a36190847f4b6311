"""`make demo`: the main job on bundled samples.

1. Forge the Dirty Vanity sample (explorer.exe forked by RtlCreateProcessReflection, the clone
   spawning cmd.exe) into out/demo/ and run `vol -p plugins callstacks.detect` on it, exactly as
   a responder would on a real image.
2. Rebuild the stacks of a process minidump captured under Wine (shellcode in RWX memory).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OUT = ROOT / "out" / "demo"


def run(title: str, cmd: list[str]) -> int:
    print(f"\n=== {title}\n$ {' '.join(cmd)}\n", flush=True)
    return subprocess.run(cmd, cwd=ROOT).returncode


def image_demo() -> int:
    image = OUT / "dirty_vanity.raw"
    status = run("forge a memory image from a scenario file",
                 [str(BIN / "callstack-forensics"), "forge", "samples/scenarios/dirty_vanity_fork.toml", "-o", str(image)])
    if status:
        return status
    vol = [str(BIN / "vol"), "-q", "--offline", "--cache-path", str(OUT / "volcache"), "-p", "plugins",
           "-s", str(OUT / "symbols"), "-f", str(image)]
    (OUT / "volcache").mkdir(exist_ok=True)
    status = run("detections (Volatility 3 plugin)", vol + ["callstacks.detect"])
    return status or run("the forked explorer's stacks", vol + ["callstacks.stacks", "--pid", "6092"])


def minidump_demo() -> int:
    sys.path.insert(0, str(ROOT))  # the Wine harness lives in the test tree
    try:
        from tests.wine.capture import capture_all
    except ImportError as exc:
        print(f"minidump demo skipped: {exc}", file=sys.stderr)
        return 0
    captures = capture_all()
    dump = captures["shellcode"].directory / "full.dmp"
    return run("stacks of a process minidump (shellcode in RWX memory calling Sleep)",
               [str(BIN / "callstack-forensics"), "stacks", str(dump)])


def main() -> int:
    os.environ.setdefault("COLUMNS", "160")
    OUT.mkdir(parents=True, exist_ok=True)
    return image_demo() or minidump_demo()


if __name__ == "__main__":
    sys.exit(main())
