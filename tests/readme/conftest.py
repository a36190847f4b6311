"""The README read once, and followed once per session in a sandbox (see sandbox.py, walk.py)."""

from __future__ import annotations

import pytest

from tests.checkout import REPO

from .sandbox import Ran, build_sandbox
from .steps import Readme, read_readme
from .walk import walk

README = REPO / "README.md"


def readme() -> Readme:
    return read_readme(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    try:
        return build_sandbox(tmp_path_factory.mktemp("readme"))
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def walkthrough(sandbox) -> dict[int, Ran]:
    """Every command and Python block of the README, run in order; README line -> result."""
    return walk(sandbox, readme().steps)
