"""Forged images for the plugin tests, built once per session (default layout and the other real ISFs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("SHARED", REPO.parent / "shared"))
REAL_ISFS = sorted((SHARED / "isf" / "windows" / "ntkrnlmp.pdb").glob("*.json.xz"))
VOL = Path(sys.executable).parent / "vol"
CLI = Path(sys.executable).parent / "callstack-forensics"


def forge(scenario: str, out: Path, isf: Path | None = None) -> Path:
    cmd = [str(CLI), "forge", str(REPO / "samples" / "scenarios" / f"{scenario}.toml"), "-o", str(out)]
    if isf is not None:
        cmd += ["--isf", str(isf)]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    return out


def process_memories(image: Path) -> list[Any]:
    """Every process of ``image`` as the analysis opens it (our adapter), with the image's own symbols."""
    from callstack_forensics.volatility.session import VolatilitySettings, open_image

    source = open_image(image, VolatilitySettings(symbols=[image.parent / "symbols"]), lambda *_: None)
    return [o.memory for o in source.processes() if o.memory is not None]


def process_memory(image: Path, name: str) -> Any:
    """The process of ``image`` named ``name`` (lower case), as :func:`process_memories` opens it."""
    return next(m for m in process_memories(image) if m.process.name.lower() == name)


@contextmanager
def writes_through(image: Path, layer: Any) -> Iterator[Callable[[int, bytes], None]]:
    """``put(virtual address, bytes)``: writes into the image file where ``layer``'s page tables
    map the address (a hostile structure patched in place, the rest of the image untouched)."""
    with open(image, "r+b") as out:
        def put(address: int, data: bytes) -> None:
            physical, _ = layer.translate(address)
            out.seek(physical)
            out.write(data)
        yield put


def vol_json(image: Path, plugin: str, *args: str) -> list[dict]:
    """Run the real `vol` CLI with our plugins and the image's own symbols; rows as dicts.

    Each image gets its own Volatility cache: the cache remembers which symbol table a file
    path held, and pytest reuses temporary paths across runs with other tables in them.
    """
    cache = image.parent / "volcache"
    cache.mkdir(exist_ok=True)
    cmd = [str(VOL), "-q", "--offline", "--cache-path", str(cache), "-r", "json", "-p", str(REPO / "plugins"),
           "-s", str(image.parent / "symbols"), "-f", str(image), plugin, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout)


@pytest.fixture(scope="session")
def benign_image(tmp_path_factory) -> Path:
    return forge("benign_desktop", tmp_path_factory.mktemp("benign") / "benign.raw")


@pytest.fixture(scope="session", params=REAL_ISFS or [None], ids=lambda p: p.name[:8] if p else "none")
def benign_real_isf_image(request, tmp_path_factory) -> Path:
    if request.param is None:
        pytest.skip(f"no real ISFs under {SHARED}")
    return forge("benign_desktop", tmp_path_factory.mktemp("real") / "benign.raw", request.param)


SCENARIOS = sorted((REPO / "samples" / "scenarios").glob("*.toml"))


def vol_text(image: Path, renderer: str, plugin: str, *args: str, plugins: str | None = None) -> str:
    """The real `vol` CLI's output with any renderer (run from the project root)."""
    cache = image.parent / "volcache"
    cache.mkdir(exist_ok=True)
    cmd = [str(VOL), "-q", "--offline", "--cache-path", str(cache), "-r", renderer, "-p", plugins or str(REPO / "plugins"),
           "-s", str(image.parent / "symbols"), "-f", str(image), plugin, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="session")
def scenario_image(tmp_path_factory):
    """Forge a scenario of samples/scenarios on first use; later uses share the image."""
    images: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in images:
            images[name] = forge(name, tmp_path_factory.mktemp(name) / f"{name}.raw")
        return images[name]

    return get


@pytest.fixture(params=REAL_ISFS or [None], ids=lambda p: p.name[:8] if p else "none")
def real_isf(request) -> Path:
    """Each real kernel symbol table under $SHARED/isf (skipped when there are none)."""
    if request.param is None:
        pytest.skip(f"no real ISFs under {SHARED}")
    return request.param
