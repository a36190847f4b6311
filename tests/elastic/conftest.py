"""Forged scenarios and their events (``callstack-forensics events``), built once per session."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "callstack-forensics"


def events_of(image: Path, *extra: str) -> list[dict[str, Any]]:
    out = image.with_suffix(f".{len(extra)}.ndjson")
    cmd = [str(CLI), "events", str(image), "--symbols", str(image.parent / "symbols"),
           "--cache-dir", str(image.parent / "volcache"), "--quiet", "-o", str(out), *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def forged(tmp_path_factory) -> Callable[[str], Path]:
    images: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in images:
            image = tmp_path_factory.mktemp(name) / f"{name}.raw"
            subprocess.run([str(CLI), "forge", str(REPO / "samples" / "scenarios" / f"{name}.toml"), "-o", str(image)],
                           check=True, capture_output=True, timeout=300)
            images[name] = image
        return images[name]

    return get


@pytest.fixture(scope="session")
def benign_events(forged) -> list[dict[str, Any]]:
    return events_of(forged("benign_desktop"))


def process_event(events: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(e for e in events if e["event"]["category"] == ["process"] and e["event"]["action"] == "start"
                and e["process"]["name"].lower() == name.lower())


@pytest.fixture(scope="session")
def forged_plans(tmp_path_factory) -> Callable[[str], Any]:
    """The forge's result (image and plans) for a scenario, forged in-process once."""
    from callstack_forensics.forge.builder import forge

    results: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in results:
            out = tmp_path_factory.mktemp(f"{name}-plans") / f"{name}.raw"
            results[name] = forge(REPO / "samples" / "scenarios" / f"{name}.toml", out)
        return results[name]

    return get
