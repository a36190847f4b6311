"""The project's own Wine prefix (tests/wine/build/prefix) and how Wine processes are run in it.

**Why the prefix is "tamed".** A fresh prefix holds symlinks out of itself:
``dosdevices/z: -> /`` and ``drive_c/users/<user>/Documents`` (Desktop, ...)
``-> $HOME``. Inside the working tree that makes the tree infinite for every
tool that walks it following symlinks: setuptools' namespace package finder
(used by ``pip install -e .``, hence ``make install``) walked into ``z:`` and
through ``/`` back into the tree, and hung. So after creating the prefix (and at
the start of every session, in case Wine re-created them) those links go:
``z:`` is removed, the user folders become plain directories, and two drives
point at what the programs need, both outside the prefix so nothing loops:

  X:  tests/wine/build/bin        the programs, their DLLs and dumper.exe
  Y:  tests/wine/build/captures   where the dumps are written

A program started from build/bin therefore runs as ``X:\\fp_chain.exe``, and
the dumps name it so.

**Why the null display driver.** The tests run headless (no ``DISPLAY``), and
without a display driver Wine creates no window at all; the programs that park
threads in window procedures and modal dialogs need windows. Wine's explorer
loads the driver named in ``HKCU\\Software\\Wine\\Drivers\\Graphics``, and
``null`` is Wine's own driver that keeps windows in the window manager only.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from . import build

PREFIX = build.BUILD / "prefix"
CAPTURES = build.BUILD / "captures"
LOCK = build.BUILD / "capture.lock"
DRIVES = {"x:": build.BIN, "y:": CAPTURES}


class WineError(Exception):
    """A Wine step failed; the message names the step."""


def wine_missing() -> str | None:
    """Why the Wine tests cannot run here (no wine, winedbg or mingw), or None."""
    for tool in ("wine", "winedbg", "wineserver", "wineboot"):
        if shutil.which(tool) is None:
            return f"`{tool}` not found (Debian: apt-get install wine wine64, or `make system-deps` as root)"
    return build.toolchain_missing()


def wine_env() -> dict[str, str]:
    """Environment for every Wine process: this project's prefix, quiet, headless."""
    env = dict(os.environ)
    env.update(WINEPREFIX=str(PREFIX), WINEDEBUG="-all", WINEARCH="win64", WINEDLLOVERRIDES="mscoree,mshtml=")
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return env


def run(cmd: list[str], env: dict[str, str], timeout: float, step: str) -> subprocess.CompletedProcess:
    """Run a Wine command from X:\\ (build/bin) with a timeout; WineError names ``step`` on failure."""
    try:
        proc = subprocess.run(
            cmd, env=env, cwd=build.BIN, timeout=timeout, capture_output=True, text=True, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise WineError(f"{step}: timed out after {timeout:.0f}s") from exc
    if proc.returncode != 0:
        raise WineError(f"{step}: exit status {proc.returncode}\n{proc.stdout}\n{proc.stderr[-2000:]}")
    return proc


def ensure_prefix(env: dict[str, str], report: build.Report = build.silent) -> float:
    """Create the prefix once (wineboot -i) and tame it; the seconds creation took (0 if it existed)."""
    started = time.monotonic()
    created = not (PREFIX / "system.reg").exists()
    if created:
        report(f"creating the Wine prefix {PREFIX} (wineboot -i)")
        PREFIX.parent.mkdir(parents=True, exist_ok=True)
        run(["wineboot", "-i"], env, 300.0, "creating the Wine prefix (wineboot -i)")
        run(["wineserver", "-w"], env, 120.0, "waiting for wineboot to settle (wineserver -w)")
    tame_prefix()
    _use_null_display(env)
    return time.monotonic() - started if created else 0.0


def _use_null_display(env: dict[str, str]) -> None:
    """Name the null display driver in the prefix once (see the module docstring).

    The wineserver is stopped afterwards: explorer reads the setting when it
    starts, and one started before it was written would keep running without it.
    """
    if '"Graphics"="null"' in (PREFIX / "user.reg").read_text(errors="replace"):
        return
    run(["wine", "reg", "add", "HKCU\\Software\\Wine\\Drivers", "/v", "Graphics", "/d", "null", "/f"],
        env, 120.0, "choosing the null display driver (wine reg add)")
    stop_wineserver(env)


def tame_prefix() -> None:
    """Remove every symlink that leads out of the prefix; map X: and Y: (see the module docstring)."""
    dosdevices = PREFIX / "dosdevices"
    for link in _links_out_of_prefix():
        link.unlink()
        if link.parent != dosdevices:
            link.mkdir()
    for drive, target in DRIVES.items():
        target.mkdir(parents=True, exist_ok=True)
        link = dosdevices / drive
        wanted = os.path.relpath(target, dosdevices)
        if link.is_symlink() and os.readlink(link) == wanted:
            continue
        link.unlink(missing_ok=True)
        link.symlink_to(wanted, target_is_directory=True)


def _links_out_of_prefix() -> list[Path]:
    """Symlinks under the prefix to directories outside it (device links like com1 stay)."""
    found = []
    prefix = PREFIX.resolve()
    for root, dirs, files in os.walk(PREFIX, followlinks=False):
        for entry in (*dirs, *files):
            path = Path(root) / entry
            if not path.is_symlink() or path.parent.name == "dosdevices" and path.name in DRIVES:
                continue
            target = path.resolve()
            if target.is_dir() and prefix not in (target, *target.parents):
                found.append(path)
    return found


def stop_wineserver(env: dict[str, str]) -> None:
    """End this prefix's wineserver and every process it still runs (ours only: our prefix)."""
    try:
        subprocess.run(["wineserver", "-k"], env=env, timeout=30, capture_output=True, check=False)
    except subprocess.TimeoutExpired:
        pass


def wine_version(env: dict[str, str]) -> str:
    """``wine-8.0 (Debian 8.0~repack-4)``: part of the capture cache key, so an upgrade recaptures."""
    return run(["wine", "--version"], env, 60.0, "asking `wine --version`").stdout.strip()


def windows_path(path: Path) -> str:
    """The path as the Wine programs see it: under X: or Y:, else through Wine's \\\\?\\unix\\ form."""
    path = path.resolve()
    for drive, root in DRIVES.items():
        root = root.resolve()
        if root == path or root in path.parents:
            return drive.upper() + "\\" + "\\".join(path.relative_to(root).parts)
    return "\\\\?\\unix" + str(path).replace("/", "\\")


@contextmanager
def session_lock() -> Iterator[None]:
    """One Wine session at a time per working tree: they share the prefix and its wineserver."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
