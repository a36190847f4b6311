"""The first build of the Wine programs takes minutes; `make demo` shows each compile as it
starts ("building twodll.exe (1/2)") instead of staying silent, and says nothing once they are
built. Built into a temporary folder, so the session's own build is untouched."""

from __future__ import annotations

import pytest

from . import build

pytestmark = pytest.mark.wine


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    missing = build.toolchain_missing()
    if missing:
        pytest.skip(missing)
    monkeypatch.setattr(build, "BIN", tmp_path)
    monkeypatch.setattr(build, "PROGRAMS", (build.ALL_TARGETS["twodll"],))
    return tmp_path


def test_each_compile_is_reported_as_it_starts_with_its_place(elsewhere):
    lines: list[str] = []
    built = build.build_all(report=lines.append)
    assert lines == ["building dll_b.dll (1/2)", "building dll_a.dll (1/2)", "building twodll.exe (1/2)",
                     "building dumper.exe (2/2)"]
    assert sorted(p.name for p in built.values()) == ["dumper.exe", "twodll.exe"]
    assert all(p.parent == elsewhere and p.stat().st_size > 0 for p in built.values())


def test_an_up_to_date_build_says_nothing(elsewhere):
    build.build_all()
    lines: list[str] = []
    build.build_all(report=lines.append)
    assert lines == []
