"""Regenerate samples/screenshots/case-report.png, the README's picture of the HTML case report.

    .venv/bin/python samples/screenshot.py

Forges the bundled Dirty Vanity sample into out/screenshot/, runs `callstack-forensics report`
on it exactly as a responder would, and has headless Chromium (Debian's `chromium`) take a
1400x2200 screenshot of the top of the report. The image is named by a path relative to the
repository, so the picture does not depend on where the checkout lives (the rules folder is
still shown as the absolute path the report records).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callstack_forensics.report.browser import BrowserError, Chromium  # noqa: E402

OUT = Path("out") / "screenshot"
IMAGE = OUT / "dirty_vanity_fork.raw"
REPORT = OUT / "case.html"
PNG = Path("samples") / "screenshots" / "case-report.png"
WIDTH, HEIGHT = 1400, 2200


def cli(*args: str | Path) -> int:
    cmd = [sys.executable, "-m", "callstack_forensics.cli.app", *map(str, args)]
    print("$", " ".join(cmd[2:]), flush=True)
    return subprocess.run(cmd, cwd=ROOT).returncode


def main() -> int:
    try:
        chromium = Chromium.find()
    except BrowserError as exc:
        print(f"screenshot: {exc}", file=sys.stderr)
        return 2
    (ROOT / OUT).mkdir(parents=True, exist_ok=True)
    shutil.rmtree(ROOT / OUT / "cache", ignore_errors=True)
    if cli("forge", "samples/scenarios/dirty_vanity_fork.toml", "-o", IMAGE):
        return 2
    status = cli("report", IMAGE, "--symbols", OUT / "symbols", "--cache-dir", OUT / "cache", "-o", REPORT, "--quiet")
    if status not in (0, 1):  # 1: findings, as this sample must have
        return status
    (ROOT / PNG).parent.mkdir(parents=True, exist_ok=True)
    chromium.screenshot(ROOT / REPORT, ROOT / PNG, WIDTH, HEIGHT)
    print(f"screenshot: {PNG} ({(ROOT / PNG).stat().st_size // 1024} KiB) of {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
