"""The Wine prefix lives inside the working tree, so it must never make the tree infinite.

A fresh prefix links ``z:`` to ``/`` and the user folders to ``$HOME``; with
those, ``pip install -e .`` (setuptools' namespace finder follows symlinks)
walked forever. The session tames the prefix; this proves it stays tamed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from . import build
from .wineprefix import CAPTURES, PREFIX, windows_path

pytestmark = pytest.mark.wine


def test_walking_the_build_tree_following_links_stays_inside_it(captures):
    assert PREFIX.exists()
    inside = build.BUILD.resolve()
    visited = 0
    for root, _dirs, _files in os.walk(build.BUILD, followlinks=True):
        visited += 1
        assert visited < 100_000, f"the walk does not end (at {root})"
        real = Path(root).resolve()
        assert real == inside or inside in real.parents, f"{root} leads out of the tree to {real}"


def test_programs_and_dumps_have_windows_paths(captures):
    assert windows_path(build.BIN / "fp_chain.exe") == "X:\\fp_chain.exe"
    assert windows_path(CAPTURES / "fp_chain" / "full.dmp") == "Y:\\fp_chain\\full.dmp"
    assert windows_path(Path("/tmp/elsewhere/a.dmp")) == "\\\\?\\unix\\tmp\\elsewhere\\a.dmp"
    assert captures["fp_chain"].ready["program"] == "fp_chain"
