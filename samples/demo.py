"""`make demo`: the main job on bundled samples.

1. Forge the Dirty Vanity sample (explorer.exe forked by RtlCreateProcessReflection, the clone
   spawning cmd.exe) into out/demo/.
2. `callstack-forensics analyze` on it (findings and per-process tables), then
   `callstack-forensics report` (the HTML case report), and print where the report is.
3. The same detections through Volatility: `vol -p plugins callstacks.detect`.
4. Analyze a normal process minidump captured under Wine (shellcode in RWX memory), its
   modules read from the files Wine loaded (--modules).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OUT = ROOT / "out" / "demo"


def run(title: str, cmd: list[str], ok: tuple[int, ...] = (0,)) -> int:
    """Run one step as typed; ``ok`` lists the exit codes that are not failures (1 = findings)."""
    shown = [str(Path(c).relative_to(ROOT)) if c.startswith(str(ROOT)) else c for c in cmd]
    print(f"\n=== {title}\n$ {' '.join(shown)}\n", flush=True)
    status = subprocess.run(cmd, cwd=ROOT).returncode
    return 0 if status in ok else status


def image_demo() -> int:
    image = OUT / "dirty_vanity.raw"
    status = run("forge a memory image from a scenario file",
                 [str(BIN / "callstack-forensics"), "forge", "samples/scenarios/dirty_vanity_fork.toml", "-o", str(image)])
    if status:
        return status
    cli = [str(BIN / "callstack-forensics")]
    symbols = ["--symbols", str(OUT / "symbols"), "--cache-dir", str(OUT / "volcache")]
    status = run("analyze: findings, then every process (exit code 1 = findings)",
                 cli + ["analyze", str(image), *symbols], ok=(0, 1))
    report = OUT / "case.html"
    status = status or run("report: the HTML case report", cli + ["report", str(image), *symbols, "-o", str(report)],
                           ok=(0, 1))
    if status:
        return status
    vol = [str(BIN / "vol"), "-q", "--offline", "--cache-path", str(OUT / "volcache"), "-p", "plugins",
           "-s", str(OUT / "symbols"), "-f", str(image)]
    return run("the same detections through Volatility 3", vol + ["callstacks.detect"])


def minidump_demo() -> int:
    sys.path.insert(0, str(ROOT))  # the Wine harness lives in the test tree
    try:
        from tests.wine.capture import capture_all
    except ImportError as exc:
        print(f"minidump demo skipped: {exc}", file=sys.stderr)
        return 0
    from tests.wine.build import BIN as PROGRAMS
    from tests.wine.wineprefix import PREFIX

    print("\n=== the Wine test programs: built with mingw-w64 and captured under Wine on the first run "
          "(each step is shown), cached afterwards", flush=True)
    captures = capture_all(names=["shellcode"], report=lambda line: print(f"  {line}", flush=True))
    dump = captures["shellcode"].directory / "normal.dmp"
    system32 = PREFIX / "drive_c" / "windows" / "system32"
    return run("a normal minidump (shellcode in RWX memory calling Sleep), modules from the files Wine loaded",
               [str(BIN / "callstack-forensics"), "analyze", str(dump), "--modules", str(PROGRAMS),
                "--modules", str(system32)], ok=(0, 1))


def main() -> int:
    os.environ.setdefault("COLUMNS", "160")
    OUT.mkdir(parents=True, exist_ok=True)
    status = image_demo() or minidump_demo()
    print(f"\nCase report of the forged image: {OUT / 'case.html'}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
