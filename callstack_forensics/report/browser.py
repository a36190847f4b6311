"""Headless Chromium on a report: the DOM after its scripts ran, or a screenshot.

The escaping tests need a real browser (an HTML parser in Python cannot say what a browser
would execute), and the README's screenshot must be what a reader's browser shows. Debian's
``chromium`` is the one `make system-deps` installs. Every run gets a fresh profile folder
and the flags that keep Chromium from reaching out (no sync, no component updates, no
background networking), so a run is offline and repeatable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DEFAULT_PATH = Path("/usr/bin/chromium")
QUIET_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
    "--force-device-scale-factor=1", "--mute-audio", "--disable-extensions",
)


class BrowserError(Exception):
    """Chromium is missing, failed, or produced nothing."""


@dataclass(frozen=True, slots=True)
class Chromium:
    """One Chromium executable; each call is a separate headless run."""

    executable: Path
    timeout: float = 60.0
    virtual_time_ms: int = 2000  # lets the page's scripts run before the DOM or pixels are taken

    @classmethod
    def find(cls, explicit: str | Path | None = None) -> "Chromium":
        """``explicit``, else $CHROMIUM, else the first of :data:`CANDIDATES` on PATH."""
        for candidate in (explicit, os.environ.get("CHROMIUM")):
            if candidate:
                path = Path(candidate)
                if path.is_file() and os.access(path, os.X_OK):
                    return cls(path)
                raise BrowserError(f"{path}: not an executable Chromium")
        for name in CANDIDATES:
            found = shutil.which(name)
            if found:
                return cls(Path(found))
        if DEFAULT_PATH.is_file():
            return cls(DEFAULT_PATH)
        raise BrowserError("no Chromium found (Debian: apt-get install chromium, or `make system-deps` as root)")

    def dump_dom(self, page: Path, fragment: str = "") -> str:
        """The serialized DOM of ``page`` (a local file) after its scripts ran."""
        return self._run(["--dump-dom", _url(page, fragment)]).stdout

    def screenshot(self, page: Path, png: Path, width: int = 1400, height: int = 2200) -> Path:
        """A PNG of the top ``width`` x ``height`` pixels of ``page``."""
        png.unlink(missing_ok=True)
        self._run([f"--screenshot={png}", f"--window-size={width},{height}", _url(page, "")])
        if not png.is_file() or png.stat().st_size == 0:
            raise BrowserError(f"Chromium wrote no screenshot to {png}")
        return png

    def _run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory(prefix="cf-chromium-") as profile:
            cmd = [str(self.executable), *QUIET_FLAGS, f"--user-data-dir={profile}",
                   f"--virtual-time-budget={self.virtual_time_ms}", *args]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout,
                                      env={**os.environ, "HOME": profile})
            except subprocess.TimeoutExpired as exc:
                raise BrowserError(f"Chromium did not finish in {self.timeout:.0f}s") from exc
        if done.returncode != 0:
            raise BrowserError(f"Chromium exited with {done.returncode}: {done.stderr.strip()[-800:]}")
        return done


def _url(page: Path, fragment: str) -> str:
    url = page.resolve().as_uri()
    return f"{url}#{urllib.parse.quote(fragment, safe='=')}" if fragment else url
