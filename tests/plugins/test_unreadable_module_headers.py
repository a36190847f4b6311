"""Module headers that are not in the image: the frames stay image-backed, never RWX, never unnamed.

On real machines the header page of a module is often not resident. The image VAD then
still says the mapping is an image of a named file, but its protection (EXECUTE_WRITECOPY,
the mapping's) is no page's protection: read as the frames' protection it raised "Call Stack
Frame in RWX Memory" on ntdll, and with the loader list damaged too, ntdll's frames were
``Unknown`` and raised "System Call Issued Outside ntdll". The image here is forged, then the
page-table entries of ntdll's header page are made not present in every process, as paging
leaves them: nothing else changes.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from tests.fuzz.image_view import ForgedView, Patch
from tests.fuzz.images import ImageCorpus

from .conftest import vol_json

SCENARIO = "benign_desktop"


def _not_present(view: ForgedView, names: tuple[str, ...]) -> list[Patch]:
    """Clear the present bit of the PTE of each named module's header page, in every process."""
    patches: dict[int, Patch] = {}
    for plan in view.user_processes():
        for module in view.mapped_modules(plan.pid):
            if module.path.rsplit("\\", 1)[-1].lower() not in names:
                continue
            entries = view.walk(plan.dtb, module.base)
            pte = entries[-1]
            assert pte.level == 1 and pte.value & 1, "the forge maps module headers with 4 KiB pages"
            patches[pte.slot] = Patch(pte.slot, struct.pack("<Q", pte.value & ~1))
    assert patches
    return list(patches.values())


def _loader_lists_gone(view: ForgedView) -> list[Patch]:
    """Zero every process's PEB_LDR_DATA list heads: no loader list names any module."""
    out = []
    for plan in view.user_processes():
        ldr = view.ldr_data(plan.pid)
        if ldr is None:
            continue
        found = view.patches(plan.pid, ldr, bytes(0x58))
        if found:
            out += found
    assert out
    return out


def _mutated(folder: Path, view: ForgedView, name: str, patches: list[Patch]) -> Path:
    image = folder / f"{name}.raw"
    _sparse_copy(view.result.image, image)
    with open(image, "r+b") as handle:
        for patch in patches:
            handle.seek(patch.offset)
            handle.write(patch.data)
    return image


def _sparse_copy(source: Path, target: Path) -> None:
    """``source``'s bytes into ``target``, its holes left holes: the forge writes a 4 GiB image
    sparse, and a plain copy would write all of it (4 GiB of disk and seconds per copy)."""
    size = source.stat().st_size
    with open(source, "rb") as src, open(target, "wb") as dst:
        dst.truncate(size)
        offset = 0
        while offset < size:
            try:
                start = os.lseek(src.fileno(), offset, os.SEEK_DATA)
            except OSError:  # no data past offset (ENXIO)
                break
            end = os.lseek(src.fileno(), start, os.SEEK_HOLE)
            src.seek(start)
            dst.seek(start)
            remaining = end - start
            while remaining:
                chunk = src.read(min(remaining, 1 << 20))
                if not chunk:
                    return
                dst.write(chunk)
                remaining -= len(chunk)
            offset = end


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("headers")
    corpus = ImageCorpus(folder, (SCENARIO,))
    view = corpus.view(SCENARIO)
    headers = _not_present(view, ("ntdll.dll", "kernelbase.dll"))
    return {
        "headers": _mutated(folder, view, "headers", headers),
        "headers+loader": _mutated(folder, view, "headers-loader", headers + _loader_lists_gone(view)),
    }


@pytest.mark.parametrize("case", ["headers", "headers+loader"])
def test_no_finding_is_raised_from_a_missing_header_page(images, case):
    assert vol_json(images[case], "callstacks.detect") == []


@pytest.mark.parametrize("case", ["headers", "headers+loader"])
def test_frames_in_a_module_without_headers_are_named_from_the_vad_and_not_rwx(images, case):
    rows = vol_json(images[case], "callstacks.stacks")
    ntdll = [r for r in rows if "ntdll.dll" in (r.get("Symbol") or "")]
    assert ntdll, "threads still have frames in ntdll"
    assert all(r["Region"] == "image" for r in ntdll)
    assert all(r["Protection"] in ("Unknown", "R-X") for r in ntdll), {r["Protection"] for r in ntdll}
    assert not [r for r in rows if (r.get("Protection") or "").startswith("RWX")]
    assert not [r for r in rows if r.get("Symbol") == "Unknown" and r.get("Region") == "image"]
