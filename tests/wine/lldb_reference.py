"""LLDB's backtraces of a capture: the second, independent reference beside winedbg.

Debian's lldb reads minidumps and unwinds x64 from .pdata (and DWARF where a
module has it). tests/wine/lldb_backtrace.py runs inside LLDB's own Python
(the system interpreter python3-lldb is built for) and prints every thread's
physical frames as JSON; this module runs it on a capture's full dump, with
a timeout, and caches the result beside the capture (``lldb.json``), redone
when the dump, the script or LLDB changes.

LLDB is given the directories that hold the modules' files (the programs in
build/bin, Wine's DLLs in the prefix's system32): a minidump has no module
images for LLDB to read .pdata from.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import build
from .capture import CaptureResult
from .truth import ThreadTruth
from .wineprefix import PREFIX

SCRIPT = Path(__file__).resolve().parent / "lldb_backtrace.py"
WORK = build.BUILD / "lldb"
LLDB_TIMEOUT = 300.0
VERSION_TIMEOUT = 60.0


class LldbError(Exception):
    """LLDB could not be run on a capture; the message says why."""


@dataclass(frozen=True)
class LldbFrame:
    """One physical frame as LLDB shows it; ``functions`` names the inlined ones too, innermost first."""

    pc: int
    sp: int
    cfa: int
    functions: tuple[str, ...]
    module: str | None


@dataclass(frozen=True)
class LldbModule:
    """A module of the dump as LLDB loaded it: ``found`` is False when LLDB had no file for it."""

    name: str
    path: str
    found: bool
    base: int
    end: int


@dataclass(frozen=True)
class LldbStop:
    """Why LLDB ended a backtrace, from its unwind log: the frame it gave up on and what it had computed."""

    frame: int
    message: str
    pc: int | None
    cfa: int | None
    return_slot: int | None  # the 8 bytes at cfa - 8, where LLDB looked for that frame's return address


@dataclass(frozen=True)
class LldbFunction:
    """Where LLDB takes the function holding an address to start (DWARF function, else symbol), and its name."""

    start: int | None
    name: str | None


@dataclass
class LldbBacktraces:
    """Everything LLDB said about one dump."""

    version: str
    modules: list[LldbModule]
    threads: dict[int, list[LldbFrame]]
    stops: dict[int, LldbStop | None]
    functions: dict[int, LldbFunction]  # every reference address -> its function as LLDB sees it
    cached: bool = False

    def module_at(self, address: int) -> LldbModule | None:
        return next((m for m in self.modules if m.base <= address < m.end), None)


def search_dirs() -> list[Path]:
    """Where the modules' files are: the programs and their DLLs, and Wine's system32."""
    return [build.BIN, PREFIX / "drive_c" / "windows" / "system32"]


def system_python() -> str | None:
    """The interpreter Debian's python3-lldb is built for (not the project's venv, which lacks it)."""
    return next((p for p in ("/usr/bin/python3", shutil.which("python3")) if p and os.path.exists(p)), None)


def lldb_missing() -> str | None:
    """Why LLDB cannot be run here, or None."""
    if shutil.which("lldb") is None:
        return "`lldb` not found (Debian: apt-get install lldb, or `make system-deps` as root)"
    if system_python() is None:
        return "no system python3 to run LLDB's Python API"
    return None


def lldb_version() -> str:
    try:
        out = subprocess.run(["lldb", "--version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LldbError(f"`lldb --version` timed out after {VERSION_TIMEOUT:.0f}s") from exc
    return out.stdout.strip()


def reference_addresses(truths: list[ThreadTruth]) -> list[int]:
    """Every address of the reference: LLDB says where it takes each one's function to start."""
    return sorted({f.address for t in truths for f in t.frames})


def _key(capture: CaptureResult, addresses: list[int], version: str) -> str:
    digest = hashlib.sha256(version.encode())
    stat = capture.dump.stat()
    digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    digest.update(SCRIPT.read_bytes())
    digest.update(json.dumps(addresses).encode())
    return digest.hexdigest()


def _run(capture: CaptureResult, addresses: list[int]) -> dict:
    WORK.mkdir(parents=True, exist_ok=True)
    request = WORK / f"{capture.name}.addresses.json"
    request.write_text(json.dumps(addresses))
    cmd = [system_python(), str(SCRIPT), str(capture.dump), "--work", str(WORK), "--resolve", str(request)]
    for directory in search_dirs():
        cmd += ["--search", str(directory)]
    try:
        # LLDB prints DWARF complaints about mingw's debug info on stderr; only stdout carries the result.
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=LLDB_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LldbError(f"{capture.name}: LLDB timed out after {LLDB_TIMEOUT:.0f}s") from exc
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError) as exc:
        raise LldbError(f"{capture.name}: LLDB gave no result (exit {proc.returncode}): {proc.stderr[-1000:]}") from exc
    if "error" in result:
        raise LldbError(f"{capture.name}: {result['error']}")
    return result


def _parse(result: dict, cached: bool) -> LldbBacktraces:
    threads = {
        int(tid): [LldbFrame(f["pc"], f["sp"], f["cfa"], tuple(f["functions"]), f["module"]) for f in frames]
        for tid, frames in result["threads"].items()
    }
    modules = [LldbModule(m["name"], m["path"], m["found"], m["base"], m["end"]) for m in result["modules"]]
    stops = {int(tid): LldbStop(**stop) if stop else None for tid, stop in result["stops"].items()}
    functions = {int(a): LldbFunction(r["start"], r["name"]) for a, r in result["resolved"].items()}
    return LldbBacktraces(result["version"], modules, threads, stops, functions, cached)


def lldb_backtraces(capture: CaptureResult, truths: list[ThreadTruth]) -> LldbBacktraces:
    """LLDB's frames of every thread of the capture's full dump (cached beside it)."""
    addresses = reference_addresses(truths)
    key = _key(capture, addresses, lldb_version())
    store = capture.directory / "lldb.json"
    try:
        stored = json.loads(store.read_text())
        if stored.get("key") == key:
            return _parse(stored["result"], cached=True)
    except (OSError, ValueError):
        pass
    result = _run(capture, addresses)
    store.write_text(json.dumps({"key": key, "result": result}) + "\n")
    return _parse(result, cached=False)
