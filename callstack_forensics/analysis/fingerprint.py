"""The source file's SHA-256, for the case report: it proves which file the findings came from.

This module uses the standard library only: ``BackgroundSha256`` runs this very file as a script
in a child interpreter (``python -I fingerprint.py PATH``), which then starts in milliseconds.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

CHUNK = 8 << 20
DIGEST_PREFIX = "sha256 "


def sha256_file(path: Path, on_bytes: Callable[[int], None] | None = None,
                keep_going: Callable[[], bool] | None = None) -> str:
    """Hash in chunks (a 16 GB image must not be read into memory); ``on_bytes`` gets the running total.

    One buffer is read into over and over: a fresh bytes object per chunk costs the kernel a page
    fault per page, five times the hashing itself on a multi-GiB (sparse) image. ``keep_going``
    answering False between two chunks ends the hash with ``InterruptedError``."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    done = 0
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            if keep_going is not None and not keep_going():
                raise InterruptedError(f"hash of {path} abandoned")
            digest.update(view[:count])
            done += count
            if on_bytes is not None:
                on_bytes(done)
    return digest.hexdigest()


class BackgroundSha256:
    """A file's SHA-256 worked out by a child process while the run goes on.

    The hash of a multi-GiB image takes seconds to minutes, more than the analysis of the image.
    A thread would not overlap the two: it needs the GIL between chunks and, while the analysis
    holds it, waits up to Python's 5 ms switch interval for every 5 ms of hashing. A child
    interpreter runs on the second core untouched; the run then waits only for what is left of
    the hash when its analysis is done. The child prints its running total a line per chunk
    (``done``, read here by a thread that waits on the pipe without the GIL) and the digest last.
    Where no child can be started (a frozen build has no interpreter to start, a sandbox may
    refuse it), the same hash runs on that thread instead: slower beside the walk, same digest."""

    def __init__(self, path: Path, on_bytes: Callable[[int], None] | None = None) -> None:
        self.path = path
        self.done = 0
        self._cancelled = False
        self._on_bytes = on_bytes
        self._digest: str | None = None
        self._error: str | None = None
        self._child = _start_child(path)
        self.pid = self._child.pid if self._child is not None else None
        work = self._follow if self._child is not None else self._hash_here
        self._worker = threading.Thread(target=work, name=f"sha256 {path.name}", daemon=True)
        self._worker.start()

    def _follow(self) -> None:
        assert self._child is not None and self._child.stdout is not None
        for line in self._child.stdout:
            if line.startswith(DIGEST_PREFIX):
                self._digest = line[len(DIGEST_PREFIX):].strip()
            elif line.strip().isdigit():
                self._report(int(line))

    def _hash_here(self) -> None:
        try:
            self._digest = sha256_file(self.path, self._report, lambda: not self._cancelled)
        except OSError as exc:
            self._error = str(exc)

    def _report(self, done: int) -> None:
        """Progress is for the eye: a callback that fails is dropped, the hash goes on."""
        self.done = done
        if self._on_bytes is None:
            return
        try:
            self._on_bytes(done)
        except Exception:
            self._on_bytes = None

    def result(self) -> str:
        """The hex digest once the whole file is hashed; ``OSError`` with the hash's own words
        when it could not hash the file."""
        if self._cancelled:
            raise InterruptedError(f"SHA-256 of {self.path} abandoned")
        self._worker.join()
        if self._child is not None:
            assert self._child.stderr is not None
            error, code = self._child.stderr.read().strip(), self._child.wait()
            if code != 0 or self._digest is None:
                self._error = error.splitlines()[-1] if error else f"the hashing process exited {code}"
        if self._error is not None or self._digest is None:
            raise OSError(f"SHA-256 of {self.path} not worked out: {self._error}")
        return self._digest

    def cancel(self) -> None:
        """The run no longer needs the hash (it failed or was interrupted): stop reading the file."""
        self._cancelled = True
        if self._child is not None:
            if self._child.poll() is None:
                self._child.kill()
            self._child.wait()
        self._worker.join()
        if self._child is not None:
            for stream in (self._child.stdout, self._child.stderr):
                if stream is not None:
                    stream.close()


def _start_child(path: Path) -> subprocess.Popen | None:
    """This file run as a script by the same interpreter; None where that cannot be done."""
    if getattr(sys, "frozen", False) or not sys.executable:
        return None
    try:
        return subprocess.Popen([sys.executable, "-I", str(Path(__file__).resolve()), str(path)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    except OSError:
        return None


def _child_main(argv: list[str]) -> int:
    """The child's side: hash, a running total per chunk, the digest last. It stops on its own
    when its parent is gone (killed without a chance to cancel it)."""
    if len(argv) != 2:
        print("usage: fingerprint.py FILE", file=sys.stderr)
        return 2
    parent = os.getppid()
    try:
        digest = sha256_file(Path(argv[1]), lambda done: print(done, flush=True),
                             lambda: os.getppid() == parent)
    except OSError as exc:  # BrokenPipeError included: the parent closed the pipe
        print(f"{exc}", file=sys.stderr)
        return 1
    print(DIGEST_PREFIX + digest, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv))
