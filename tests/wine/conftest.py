"""Session fixtures for the Wine ground-truth tests: build, capture, walk and ask LLDB once, share the results.

Where wine, mingw-w64 or lldb cannot be had the tests that need them skip,
loudly (the reason is repeated at the end of the run); in CI (``CI=true``)
their absence fails the run instead, because the Wine tests are the proof
that the engine is right. A capture (or an LLDB run) that fails on a machine
that has the tools is an error, never a skip.
"""

from __future__ import annotations

import os

import pytest

from .build import BuildError
from .capture import CaptureResult, capture_all
from .lldb_reference import LldbError, lldb_missing
from .oracle import ThreadComparison, attach_lldb, compare_capture, load_walker
from .pdata import PdataFiles
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


@pytest.fixture(scope="session")
def comparisons(captures) -> dict[str, list[ThreadComparison]]:
    """Every captured thread walked by the engine beside its reference."""
    walk, why = load_walker()
    if walk is None:
        pytest.fail(why or "walker not importable")
    return {name: compare_capture(capture, walk) for name, capture in captures.items()}


@pytest.fixture(scope="session")
def lldb_comparisons(captures, comparisons) -> dict[str, list[ThreadComparison]]:
    """The same comparisons with LLDB's backtraces attached (tests/wine/lldb_compare.py)."""
    missing = lldb_missing()
    if missing:
        if in_ci():
            pytest.fail(f"CI=true but the LLDB reference cannot run: {missing}", pytrace=False)
        _SKIPPED.append(missing)
        pytest.skip(_banner(missing))
    pdata = PdataFiles()
    try:
        for name, capture in captures.items():
            attach_lldb(comparisons[name], capture, pdata)
    except LldbError as exc:
        pytest.fail(f"LLDB failed: {exc}", pytrace=False)
    return comparisons


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001 - pytest hook
    if _SKIPPED:
        terminalreporter.write_sep("!", "WINE GROUND-TRUTH TESTS SKIPPED", red=True, bold=True)
        terminalreporter.write_line(_banner(_SKIPPED[0]), red=True, bold=True)
        terminalreporter.write_line("Run `make system-deps` as root on Debian to install wine64, mingw-w64 and lldb.")
