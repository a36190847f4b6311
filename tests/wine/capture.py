"""Capture the Wine ground truth: a full minidump and winedbg's backtraces, taken together.

For each test program (tests/wine/build.py): start it under Wine in the
project's own prefix, wait for its JSON ready line, attach winedbg (which stops
the process), and while the process is stopped write a full-memory minidump
with dumper.exe and ask winedbg for ``bt <tid>`` of every thread of the
program (never ``bt all``, which attaches every Wine process). Then detach,
kill the program, and at the end of the session stop this prefix's wineserver.

Outputs per program, in tests/wine/build/captures/<program>/:
  full.dmp        the dump (MiniDumpWithFullMemory + the dumper's MemoryInfoList)
  normal.dmp      a normal dump (stacks only) of the same stopped process: small, for
                  hostile-input tests and for readers of dumps without full memory
  appended.dmp    the normal dump again, its MemoryInfoList added by the dumper's
                  append-and-patch fallback instead of dbghelp's user streams
  winedbg.json    {tid: [{"index", "address", "text"}]}, frames as winedbg prints them
  self.json       the program's own ready line (its threads and expected addresses)
  winedbg.log     the raw winedbg transcript, for debugging
  capture.json    the cache key, the break-in thread, timings

Captures are cached: one is redone only when the program, the dumper, this
file or the prefix's set-up (wineprefix.py) changes (or with force=True).
Every step has a timeout, no process is left behind, and a failure names the
program and the step.

Run ``python -m tests.wine.capture [--force] [program ...]``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from . import build, wineprefix
from .wineprefix import (
    CAPTURES,
    PREFIX,
    WineError,
    ensure_prefix,
    run,
    session_lock,
    stop_wineserver,
    tame_prefix,
    wine_env,
    wine_missing,
    wine_version,
    windows_path,
)

READY_TIMEOUT = 60.0
DEBUGGER_TIMEOUT = 60.0
DUMPER_TIMEOUT = 180.0
PROMPT = b"Wine-dbg>"


class CaptureError(WineError):
    """A capture step failed; the message says which program and which step."""


@dataclass
class CaptureResult:
    """One program's capture, as stored on disk."""

    name: str
    directory: Path
    ready: dict
    winedbg: dict[int, list[dict]]
    breakin_tid: int | None
    timings: dict[str, float] = field(default_factory=dict)
    cached: bool = False

    @property
    def dump(self) -> Path:
        return self.directory / "full.dmp"

    @property
    def normal_dump(self) -> Path:
        return self.directory / "normal.dmp"

    @property
    def appended_dump(self) -> Path:
        return self.directory / "appended.dmp"

    @property
    def transcript(self) -> Path:
        return self.directory / "winedbg.log"

    @property
    def pid(self) -> int:
        return int(self.ready["pid"])


# ---- processes with timeouts -------------------------------------------------------


def _read_line(stream: IO[bytes], timeout: float, what: str) -> bytes:
    """One line from a pipe, or CaptureError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([stream], [], [], max(0.0, left))
        if not ready:
            raise CaptureError(f"{what}: no complete line within {timeout:.0f}s (got {buf[-300:]!r})")
        chunk = os.read(stream.fileno(), 1)
        if not chunk:
            raise CaptureError(f"{what}: the program exited before printing its ready line (got {buf[-300:]!r})")
        buf += chunk
    return buf


def _kill(proc: subprocess.Popen | None) -> None:
    """Kill one process we started, by its own id, and reap it."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


class Winedbg:
    """An interactive winedbg session over pipes, with a transcript of both directions."""

    def __init__(self, env: dict[str, str], transcript: IO[str]) -> None:
        self.transcript = transcript
        self.proc = subprocess.Popen(
            ["winedbg"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=build.BIN,
        )
        self._pending = b""
        self.read_until_prompt(DEBUGGER_TIMEOUT, "starting winedbg")

    def read_until_prompt(self, timeout: float, step: str) -> str:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while PROMPT not in self._pending:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, left))
            if not ready:
                raise CaptureError(f"{step}: winedbg gave no prompt within {timeout:.0f}s")
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise CaptureError(f"{step}: winedbg exited ({self._pending[-500:]!r})")
            self._pending += chunk
        out, self._pending = self._pending.split(PROMPT, 1)
        text = out.decode("utf-8", errors="replace")
        self.transcript.write(text + PROMPT.decode())
        return text

    def command(self, line: str, step: str, timeout: float = DEBUGGER_TIMEOUT) -> str:
        self.transcript.write(line + "\n")
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        return self.read_until_prompt(timeout, step)

    def quit(self) -> None:
        """Detach (the target keeps running) and leave; kill winedbg if it hangs."""
        try:
            if self.proc.poll() is None:
                self.command("detach", "detaching winedbg", 30.0)
                self.transcript.write("quit\n")
                assert self.proc.stdin is not None
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
        except (CaptureError, OSError, subprocess.TimeoutExpired):
            pass
        finally:
            _kill(self.proc)


# ---- parsing winedbg -------------------------------------------------------------

_FRAME = re.compile(r"^\s*(?:=>)?\s*(\d+)\s+0x([0-9a-fA-F]+)\b\s*(.*)$")
_PROCESS = re.compile(r"^([0-9a-fA-F]{8})\s+(\(D\)\s+)?(.*)$")
_THREAD = re.compile(r"^\s+([0-9a-fA-F]{8})\s+-?\d+\s*(<==)?")


def parse_backtrace(text: str) -> list[dict]:
    """Frames of one ``bt`` as printed: index, address and the rest of the line (names, module)."""
    frames = []
    for line in text.splitlines():
        match = _FRAME.match(line)
        if match:
            frames.append({"index": int(match[1]), "address": int(match[2], 16), "text": match[3].strip()})
    return frames


def parse_threads(text: str, pid: int) -> tuple[list[int], int | None]:
    """The thread ids ``info thread`` lists under process ``pid``, and the current one (``<==``)."""
    tids: list[int] = []
    current = None
    inside = False
    for line in text.splitlines():
        proc = _PROCESS.match(line)
        if proc:
            inside = int(proc[1], 16) == pid
            continue
        thread = _THREAD.match(line)
        if inside and thread:
            tids.append(int(thread[1], 16))
            if thread[2]:
                current = int(thread[1], 16)
    return tids, current


# ---- one program ---------------------------------------------------------------------


def _start_program(exe: Path, env: dict[str, str], stderr: IO[bytes]) -> tuple[subprocess.Popen, dict, float]:
    started = time.monotonic()
    proc = subprocess.Popen(["wine", str(exe)], cwd=exe.parent, env=env, stdout=subprocess.PIPE, stderr=stderr)
    try:
        assert proc.stdout is not None
        line = _read_line(proc.stdout, READY_TIMEOUT, "waiting for the ready line")
        ready = json.loads(line)
    except (CaptureError, json.JSONDecodeError) as exc:
        _kill(proc)
        raise CaptureError(f"waiting for the ready line: {exc}") from exc
    if not ready.get("ready"):
        _kill(proc)
        raise CaptureError(f"the program is not ready: {ready}")
    return proc, ready, time.monotonic() - started


def _write_dump(dumper: Path, pid: int, out: Path, env: dict[str, str], *mode: str) -> None:
    out.unlink(missing_ok=True)
    cmd = ["wine", str(dumper), str(pid), windows_path(out), *mode]
    run(cmd, env, DUMPER_TIMEOUT, f"writing {out.name} (dumper.exe {' '.join(mode)})")
    if not out.exists() or out.stat().st_size < 32:
        raise CaptureError(f"writing the dump: {out} is missing or empty")


def _backtraces(dbg: Winedbg, pid: int, ready: dict) -> tuple[dict[int, list[dict]], int | None]:
    listing = dbg.command("info thread", "listing threads (info thread)")
    tids, current = parse_threads(listing, pid)
    known = [ready["main_tid"], *(t["tid"] for t in ready["threads"])]
    missing = [t for t in known if t not in tids]
    if missing:
        raise CaptureError(f"listing threads: winedbg does not list threads {missing} of pid {pid}")
    return {tid: parse_backtrace(dbg.command(f"bt 0x{tid:x}", f"backtrace of thread {tid}")) for tid in tids}, current


def capture_program(target: build.Target, dumper: Path, env: dict[str, str], key: str) -> CaptureResult:
    """Run one program and capture it; the caller holds the session lock."""
    out = CAPTURES / target.name
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    program = dbg = None
    with open(out / "winedbg.log", "w") as transcript, open(out / "program.stderr", "wb") as stderr:
        try:
            program, ready, timings["start_to_ready"] = _start_program(target.output, env, stderr)
            pid = int(ready["pid"])
            clock = time.monotonic()
            dbg = Winedbg(env, transcript)
            attach = dbg.command(f"attach 0x{pid:x}", f"attaching winedbg to pid {pid}")
            if "Can't attach" in attach or "cannot attach" in attach.lower():
                raise CaptureError(f"attaching winedbg to pid {pid}: {attach.strip()}")
            timings["attach"] = time.monotonic() - clock
            clock = time.monotonic()
            _write_dump(dumper, pid, out / "full.dmp", env, "full")
            timings["dump"] = time.monotonic() - clock
            _write_dump(dumper, pid, out / "normal.dmp", env, "normal")
            _write_dump(dumper, pid, out / "appended.dmp", env, "normal", "append")
            clock = time.monotonic()
            frames, breakin = _backtraces(dbg, pid, ready)
            timings["backtraces"] = time.monotonic() - clock
        except WineError as exc:
            raise CaptureError(f"{target.name}: {exc} (transcript: {out / 'winedbg.log'})") from exc
        finally:
            if dbg is not None:
                dbg.quit()
            _kill(program)
    result = CaptureResult(target.name, out, ready, frames, breakin, timings)
    _store(result, key)
    return result


# ---- the cache -------------------------------------------------------------------------


def _capture_key(target: build.Target, wine: str) -> str:
    digest = hashlib.sha256(wine.encode())
    own_code = (Path(__file__).resolve(), Path(wineprefix.__file__).resolve())
    for path in (target.output, build.DUMPER.output, *own_code):
        digest.update(path.read_bytes())
    for dep in target.links:
        digest.update(build.ALL_TARGETS[dep].output.read_bytes())
    return digest.hexdigest()


def _store(result: CaptureResult, key: str) -> None:
    out = result.directory
    (out / "self.json").write_text(json.dumps(result.ready, indent=1) + "\n")
    (out / "winedbg.json").write_text(json.dumps({str(t): f for t, f in result.winedbg.items()}, indent=1) + "\n")
    meta = {"key": key, "breakin_tid": result.breakin_tid, "timings": result.timings}
    (out / "capture.json").write_text(json.dumps(meta, indent=1) + "\n")


def load_capture(name: str, key: str | None = None) -> CaptureResult | None:
    """A stored capture, or None when absent, incomplete or (given ``key``) stale."""
    out = CAPTURES / name
    try:
        meta = json.loads((out / "capture.json").read_text())
        ready = json.loads((out / "self.json").read_text())
        frames = {int(t): f for t, f in json.loads((out / "winedbg.json").read_text()).items()}
    except (OSError, ValueError):
        return None
    if key is not None and meta.get("key") != key:
        return None
    if not all((out / f).exists() for f in ("full.dmp", "normal.dmp", "appended.dmp")):
        return None
    return CaptureResult(name, out, ready, frames, meta.get("breakin_tid"), meta.get("timings", {}), cached=True)


def _cached(targets: list[build.Target], wine: str, force: bool) -> tuple[dict, list]:
    """Captures still valid on disk, and the (target, key) pairs that must be redone."""
    results: dict[str, CaptureResult] = {}
    todo = []
    for target in targets:
        key = _capture_key(target, wine)
        cached = None if force else load_capture(target.name, key)
        if cached is not None:
            results[target.name] = cached
        else:
            todo.append((target, key))
    return results, todo


def capture_all(force: bool = False, names: list[str] | None = None,
                report: build.Report = build.silent) -> dict[str, CaptureResult]:
    """Build (cached) and capture every program (cached on disk unless ``force``); ``report``
    hears of each compile and each capture before it starts (a first run takes minutes)."""
    missing = wine_missing()
    if missing:
        raise CaptureError(f"cannot capture: {missing}")
    targets = [t for t in build.PROGRAMS if names is None or t.name in names]
    env = wine_env()
    with session_lock():
        if PREFIX.exists():
            tame_prefix()  # before anything else walks the tree (see wineprefix)
        build.build_all(report=report)
        results, todo = _cached(targets, wine_version(env), force)
        if todo:
            try:
                ensure_prefix(env, report)
                for number, (target, key) in enumerate(todo, 1):
                    report(f"capturing {target.name} under Wine ({number}/{len(todo)}): "
                           "full and normal minidumps, winedbg's backtraces")
                    results[target.name] = capture_program(target, build.DUMPER.output, env, key)
            finally:
                stop_wineserver(env)
    return {t.name: results[t.name] for t in targets}


def main(argv: list[str]) -> int:
    force = "--force" in argv
    names = [a for a in argv if not a.startswith("-")] or None
    try:
        results = capture_all(force=force, names=names, report=lambda line: print(line, flush=True))
    except (WineError, build.BuildError) as exc:
        print(f"capture failed: {exc}", file=sys.stderr)
        return 1
    for name, result in results.items():
        timing = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
        state = "cached" if result.cached else "captured"
        print(f"{name:12} {state:8} {len(result.winedbg)} threads  {timing}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
