"""Session fixture for the Wine ground-truth tests: build and capture once, share the results.

Where wine or mingw-w64 cannot be had the tests skip, loudly (the reason is
repeated at the end of the run); in CI (``CI=true``) their absence fails the
run instead, because the Wine tests are the proof that the engine is right.
A capture that fails on a machine that has Wine is an error, never a skip.
"""

from __future__ import annotations

import os

import pytest

from .build import BuildError
from .capture import CaptureResult, capture_all
from .wineprefix import WineError, wine_missing

_SKIPPED: list[str] = []


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _banner(reason: str) -> str:
    return f"!!! WINE GROUND-TRUTH TESTS NOT RUN: {reason} !!!"


@pytest.fixture(scope="session")
def captures() -> dict[str, CaptureResult]:
    """Every test program captured under Wine (cached on disk between runs)."""
    missing = wine_missing()
    if missing:
        if in_ci():
            pytest.fail(f"CI=true but the Wine tests cannot run: {missing}", pytrace=False)
        _SKIPPED.append(missing)
        pytest.skip(_banner(missing))
    try:
        return capture_all()
    except (BuildError, WineError) as exc:
        pytest.fail(f"Wine capture failed: {exc}", pytrace=False)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001 - pytest hook
    if _SKIPPED:
        terminalreporter.write_sep("!", "WINE GROUND-TRUTH TESTS SKIPPED", red=True, bold=True)
        terminalreporter.write_line(_banner(_SKIPPED[0]), red=True, bold=True)
        terminalreporter.write_line("Run `make system-deps` as root on Debian to install wine64 and mingw-w64.")
