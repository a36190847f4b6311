"""The case report in real headless Chromium: hostile strings from a forged image do not run
and read literally; the report's own script does run; the screenshot is a real picture.

How "nothing ran" is proven: every payload, had it run, leaves a trace in the DOM Chromium
dumps after its scripts had their time (the title becomes ``pwned-...`` or the body gets an
id). The harness is checked against a page with the same payloads unescaped: there the
traces appear, so their absence in the report means something.
"""

from __future__ import annotations

import re

from pathlib import Path

from .builders import Dom
from .conftest import (
    BROKEN_RULE_FILE, COMMAND_LINE, DLL_PATH, EXE_PATH, IMAGE_NAME, KERNEL_NAME, NAME_ATTR, NAME_SCRIPT, RULE_DESCRIPTION,
    RULE_NAME, RULE_QUERY_COMMENT,
)
from .png import SIGNATURE, read_png

MATCH_OUTLINE = (0xF0, 0x8C, 0x00)  # tr.frame.matched
UNBACKED_RED = (0xC9, 0x2A, 0x2A)
LAYER_BACKGROUNDS = {"thread start": (0xEB, 0xFB, 0xEE), "Windows module (scanned)": (0xF1, 0xF3, 0xF5),
                     "Win32 API": (0xE7, 0xF5, 0xFF), "Native API": (0xDB, 0xE4, 0xFF)}
SEVERITY_HIGH = (0xD9, 0x48, 0x0F)  # .sev.high


def no_trace_of_a_payload(dom: Dom, expected_title: str) -> None:
    assert dom.title == expected_title, f"a payload changed the title to {dom.title!r}"
    body = dom.tags("body")[0]
    assert "id" not in body and not any(k.startswith("data-") for k in body), f"a payload touched <body>: {body}"
    assert dom.tags("img") == [] and dom.tags("i") == [], "payload markup became elements"
    assert len(dom.tags("script")) == 1, "a payload became a script element"
    assert dom.event_handler_attributes() == [] and "xn" not in dom.ids()


def test_harness_sees_payloads_that_do_run(chromium, tmp_path):
    """The control: the same payloads unescaped in a page without a policy leave their traces."""
    page = tmp_path / "control.html"
    page.write_text(f"<!DOCTYPE html><html><head><title>control</title></head><body><p>{COMMAND_LINE}</p></body></html>",
                    encoding="utf-8")
    dom = Dom(chromium.dump_dom(page))
    assert dom.title == "pwned-cmd"
    assert dom.tags("body")[0].get("id") == "pwned-cmd"


def test_hostile_image_strings_do_not_run_and_read_literally(chromium, hostile, hostile_report):
    dom = Dom(chromium.dump_dom(hostile_report))
    no_trace_of_a_payload(dom, f"Case report: {hostile.image}")
    text = dom.text
    for literal in (NAME_SCRIPT, NAME_ATTR, KERNEL_NAME, COMMAND_LINE, EXE_PATH, IMAGE_NAME, RULE_NAME,
                    RULE_DESCRIPTION, RULE_QUERY_COMMENT, BROKEN_RULE_FILE,
                    EXE_PATH.lower() + "!MessageLoop+0x",  # symbol_info of the program's frames
                    DLL_PATH.lower() + "!GetMessageW+0x",
                    f"PID 8 {KERNEL_NAME}: PEB or process parameters not readable"):  # a note
        assert literal in text, f"{literal!r} does not show literally"
    # The hostile rule matched a frame of the hostile process: it is highlighted, in the finding.
    matched = [a for a in dom.tags("tr") if "matched" in (a.get("class") or "").split()]
    assert len(matched) == 2  # once under the finding, once in the process tree
    # The parent cycle in the image: both processes are in the tree, once each.
    heads = [t for t in dom.texts if t in ("cycle-a.exe", "cycle-b.exe")]
    assert sorted(heads) == ["cycle-a.exe", "cycle-b.exe"]


def test_the_reports_own_filter_runs_over_hostile_data_without_running_it(chromium, hostile, hostile_report):
    """``#filter=<script>`` makes the report's script filter the tree on hostile text at load.

    That proves the policy lets the report's own script run (its hash is right), that it
    handles the payloads as text, and that filtering does what it says."""
    dom = Dom(chromium.dump_dom(hostile_report, fragment="filter=<script>"))
    no_trace_of_a_payload(dom, f"Case report: {hostile.image}")
    count = dom.elements[[i for i, (_, a) in enumerate(dom.elements) if a.get("id") == "filter-count"][0]]
    assert count  # the element exists; its text is checked below
    # the <script> names: a.exe's threads, the kernel one; a matching frame is highlighted and its
    # thread's whole stack stays visible
    said = re.search(r"(\d+) process(?:es)?, 1 thread shown, (\d+) frames? match", dom.text)
    assert said and said.group(1) == "2", dom.text[-2000:]
    rows = [a for tag, a in dom.elements if tag == "tr" and "frame" in (a.get("class") or "").split()]
    assert not [a for a in rows if "hidden" in a.get("class", "").split()], "frames of a shown thread are never hidden"
    assert len([a for a in rows if "hit" in a.get("class", "").split()]) == int(said.group(2))
    procs = [a for tag, a in dom.elements if tag == "details" and "proc" in (a.get("class") or "").split()]
    hidden = [a for a in procs if "hidden" in (a.get("class") or "").split()]
    assert len(procs) == 6 and len(hidden) == 4
    assert all("open" in a for a in procs if a not in hidden and "suspicious" in (a.get("class") or ""))


def test_screenshot_of_the_dirty_vanity_report(chromium, fork_report, tmp_path):
    png_path = chromium.screenshot(fork_report, tmp_path / "case.png", 1400, 2200)
    data = png_path.read_bytes()
    assert data.startswith(SIGNATURE) and len(data) > 50_000
    png = read_png(data)
    assert (png.width, png.height) == (1400, 2200)
    colours = png.colours(step=2)
    assert len(colours) > 200, "the screenshot is (nearly) blank"
    white = colours.get((255, 255, 255), 0) / sum(colours.values())
    assert white < 0.8, f"{white:.0%} of the screenshot is white"
    # What the reader must see at the top: the matched frame's outline, the unbacked frame, the layers.
    assert colours.get(MATCH_OUTLINE, 0) > 500
    assert colours.get(UNBACKED_RED, 0) > 100
    for layer, rgb in LAYER_BACKGROUNDS.items():
        assert colours.get(rgb, 0) > 1000, f"no {layer} frames drawn"


def test_readme_screenshot_is_a_real_png():
    path = Path(__file__).resolve().parents[2] / "samples" / "screenshots" / "case-report.png"
    png = read_png(path.read_bytes())
    assert (png.width, png.height) == (1400, 2200) and png.colours(step=4).get(MATCH_OUTLINE, 0) > 100


def test_the_first_screen_at_1400x900_is_the_findings_summary(chromium, fork_report, tmp_path):
    """The summary (rule by process, severity, ATT&CK technique) comes before everything else:
    its rows' severity badges fill the first screen, where before only the one badge of the
    source facts' counts was there."""
    dom = Dom(chromium.dump_dom(fork_report))
    text = dom.text
    assert text.index("Summary: 3 findings") < text.index("Source and analysis") < text.index("Findings (3)")
    assert "T1055 Process Injection" in text
    png = read_png(chromium.screenshot(fork_report, tmp_path / "first.png", 1400, 900).read_bytes())
    high = png.colours(step=1).get(SEVERITY_HIGH, 0)
    one_badge = 30 * 14  # a "high" badge is about 30 x 14 pixels
    assert high > 4 * one_badge * 0.8, f"{high} pixels of high-severity badges on the first screen"
