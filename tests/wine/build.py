"""Build the Wine ground-truth programs and the dumper with mingw-w64.

Each program is a real PE32+ image whose threads park themselves in the stack
shapes the engine must handle (see tests/wine/src/*.c, *.S). Outputs go to
tests/wine/build/bin (git-ignored). A build is skipped when a stamp file holds
the same key: the hash of the compiler's version, the flags and every source
the output depends on (including common.h and this file), so editing any of
them rebuilds exactly what changed.

Run ``python -m tests.wine.build`` to build everything.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
BUILD = HERE / "build"
BIN = BUILD / "bin"

CC = "x86_64-w64-mingw32-gcc"
# DWARF 4: Wine 8's dbghelp cannot read DWARF 5, and winedbg then prints no function names.
COMMON_FLAGS = ("-gdwarf-4", "-Wall", "-static-libgcc")
# Sources every program depends on besides its own.
SHARED_INPUTS = (SRC / "common.h", SRC / "sleep_routine.h", Path(__file__).resolve())


Report = Callable[[str], None]  # one line of progress, e.g. "building fp_chain.exe (1/15)"


def silent(message: str) -> None:
    """The default report: the tests build without printing (pytest shows their outcome)."""


class BuildError(Exception):
    """A compiler or linker step failed; the message carries its command and stderr."""


@dataclass(frozen=True)
class Target:
    """One image to build: an .exe or a .dll from sources under src/.

    ``links`` names DLL targets whose import libraries this one links against
    (they are built first and placed beside the executable so Wine finds them).
    """

    name: str
    sources: tuple[str, ...]
    cflags: tuple[str, ...] = ("-O1",)
    dll: bool = False
    links: tuple[str, ...] = ()
    libs: tuple[str, ...] = ()
    extra_inputs: tuple[Path, ...] = field(default_factory=tuple)

    @property
    def output(self) -> Path:
        return BIN / f"{self.name}.{'dll' if self.dll else 'exe'}"

    @property
    def import_lib(self) -> Path:
        return BIN / f"lib{self.name}.a"

    def inputs(self) -> list[Path]:
        return [self._source(s) for s in self.sources] + list(SHARED_INPUTS) + list(self.extra_inputs)

    @staticmethod
    def _source(name: str) -> Path:
        return HERE / name if name == "dumper.c" else SRC / name


FP = ("-O1", "-fno-omit-frame-pointer")

DLLS = (
    Target("dll_b", ("dll_b.c",), FP, dll=True),
    Target("dll_a", ("dll_a.c",), ("-O1",), dll=True, links=("dll_b",)),
)

PROGRAMS = (
    Target("fp_chain", ("fp_chain.c",), FP),
    Target("frameless", ("frameless.c", "frameless.S"), FP),
    Target("nounwind", ("nounwind.c", "nounwind.S")),
    Target("chained", ("chained.c", "chained.S")),
    Target("twodll", ("twodll.c",), links=("dll_a",)),
    Target("rwx_syscall", ("rwx_syscall.c", "rwx_helpers.S")),
    Target("shellcode", ("shellcode.c", "rwx_helpers.S")),
    Target("callback", ("callback.c",)),
    Target("msgloop", ("msgloop.c",)),
    Target("alertable", ("alertable.c",)),
    Target("threadpool", ("threadpool.c",)),
    Target("recursion", ("recursion.c",)),
    Target("exceptions", ("exceptions.c", "exceptions.S")),
    Target("sleepmask", ("sleepmask.c", "rwx_helpers.S")),
    Target("implants", ("implants.c",)),
)

DUMPER = Target("dumper", ("dumper.c",), ("-O1",), libs=("-ldbghelp",))

ALL_TARGETS = {t.name: t for t in (*DLLS, *PROGRAMS, DUMPER)}


def toolchain_missing() -> str | None:
    """Why the programs cannot be built here, or None."""
    if shutil.which(CC) is None:
        return f"{CC} not found (Debian: apt-get install gcc-mingw-w64-x86-64, or `make system-deps` as root)"
    return None


def _compiler_version() -> str:
    out = subprocess.run([CC, "--version"], capture_output=True, text=True, timeout=60, check=False)
    return out.stdout.splitlines()[0] if out.stdout else "unknown"


def _key(target: Target, compiler: str) -> str:
    digest = hashlib.sha256()
    digest.update(compiler.encode())
    digest.update(repr((target.sources, target.cflags, target.dll, target.links, target.libs)).encode())
    for path in target.inputs():
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    for dep in target.links:
        digest.update(_key(ALL_TARGETS[dep], compiler).encode())
    return digest.hexdigest()


def _command(target: Target) -> list[str]:
    cmd = [CC, *COMMON_FLAGS, *target.cflags, f"-I{SRC}", "-o", str(target.output)]
    cmd += [str(target._source(s)) for s in target.sources]
    if target.dll:
        cmd += ["-shared", f"-Wl,--out-implib,{target.import_lib}"]
    for dep in target.links:
        cmd.append(str(ALL_TARGETS[dep].import_lib))
    cmd += list(target.libs)
    return cmd


def build_target(target: Target, force: bool = False, compiler: str | None = None, report: Report = silent) -> Path:
    """Build one target (and the DLLs it links) unless its stamp is current; ``report`` hears of
    each compile before it starts (a first build of everything takes minutes)."""
    compiler = compiler or _compiler_version()
    for dep in target.links:
        build_target(ALL_TARGETS[dep], force, compiler, report)
    BIN.mkdir(parents=True, exist_ok=True)
    stamp = BIN / f"{target.name}.stamp"
    key = _key(target, compiler)
    if not force and target.output.exists() and stamp.exists() and stamp.read_text() == key:
        return target.output
    report(f"building {target.output.name}")
    cmd = _command(target)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise BuildError(f"building {target.name} failed:\n$ {' '.join(cmd)}\n{proc.stderr}")
    stamp.write_text(key)
    return target.output


def build_all(force: bool = False, report: Report = silent) -> dict[str, Path]:
    """Build every program and the dumper; name -> path of the built image. ``report`` hears of
    each compile with its place in the list ("building fp_chain.exe (1/14)"); up-to-date ones are quiet."""
    missing = toolchain_missing()
    if missing:
        raise BuildError(missing)
    compiler = _compiler_version()
    targets = (*PROGRAMS, DUMPER)
    built = {}
    for number, target in enumerate(targets, 1):
        built[target.name] = build_target(target, force, compiler, numbered(report, number, len(targets)))
    return built


def numbered(report: Report, number: int, total: int) -> Report:
    """``report`` with the step's place appended: "building dll_b.dll (5/14)"."""
    return lambda message: report(f"{message} ({number}/{total})")


def main(argv: list[str]) -> int:
    try:
        built = build_all(force="--force" in argv, report=lambda line: print(line, flush=True))
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    for name, path in built.items():
        print(f"{name:12} {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
