"""The template escapes every string that comes from an image, fetches nothing, and its own
script is the only one the page's Content-Security-Policy lets run."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from markupsafe import escape

from callstack_forensics.analysis import MatchedFrame
from callstack_forensics.memory import ProcessInfo
from callstack_forensics.report import render_report
from callstack_forensics.report.render import environment

from .builders import Dom, analysis, finding, frame, process, stack

# One payload per place an image (or a rule folder handed over with it) puts text in the report.
PAYLOADS = {
    "source_path": "/cases/mem\"><img src=x onerror=alert('path')>.raw",
    "windows": "Windows <script>alert('win')</script>",
    "detail": "<svg onload=alert('detail')>",
    "process_name": "<script>a.exe",
    "process_name_attr": "\"><i id=xn>",
    "command_line": "cmd.exe \"<script>alert('cmd')</script>\" \"><img src=x onerror=alert('cmd2')>",
    "path": "C:\\x\\'><img src=x onerror=alert('p')>\\a.exe",
    "module_name": "<img src=x onerror=alert('mod')>.dll",
    "symbol_info": "c:\\u\\<b onmouseover=alert(1)>\\evil.dll!<script>F</script>+0x10",
    "frame_note": "<img src=x onerror=alert('fn')>",
    "stack_note": "</pre><script>alert('sn')</script>",
    "process_note": "<style>body{display:none}</style>",
    "analysis_note": "<a href=javascript:alert('note')>x</a>",
    "rule_name": "<script>alert('rule')</script>",
    "rule_id": "\"><img src=x onerror=alert('id')>",
    "description": "</div><img src=x onerror=alert('desc')>",
    "query": "process where name : \"</pre><script>alert('q')</script>\"",
    "severity": "high\" onmouseover=\"alert('sev')",
    "rule_dir": "/r/<script>alert('dir')</script>",
    "rule_error": "<img src=x onerror=alert('err')>.toml:1:1: bad",
    "evidence": "<script>alert('ev')</script>",
    "event_action": "<img src=x onerror=alert('act')>",
    "callsite_bytes": "<script>alert('bytes')</script>",
}


@pytest.fixture(scope="module")
def hostile_html() -> str:
    p = PAYLOADS
    odd = frame(1, "Unbacked", "RWX", note=p["frame_note"], callsite_leading_bytes=p["callsite_bytes"])
    lib = frame(2, "evil.dll!F", path="c:\\u\\" + p["module_name"])  # the name shows in call_stack_summary
    lib.symbol_info = p["symbol_info"]
    thread = stack(4120, 4124, frame(0, "ntdll.dll!NtWaitForSingleObject+0xa"), odd, lib,
                   name=p["process_name"], note=p["stack_note"])
    proc = process(4120, 3140, p["process_name"], [thread], command_line=p["command_line"], path=p["path"])
    proc.note = p["process_note"]
    other = process(4200, 4120, p["process_name_attr"], [stack(4200, 4204, frame(0, "ntdll.dll!NtDelayExecution+0x14"),
                                                                name=p["process_name_attr"])])
    hit = finding(p["rule_name"], 4120, 4124, [MatchedFrame("process.thread.Ext.call_stack", 1, 4120, 4124, p["symbol_info"])],
                  severity=p["severity"], description=p["description"], query=p["query"], process=p["process_name"],
                  event_actions=[p["event_action"]], evidence=[{"detail": p["evidence"]}],
                  events=[{"process": {"name": p["process_name"], "command_line": p["command_line"]}}])
    hit.rule_id = p["rule_id"]
    result = analysis([proc, other], [hit], notes=[p["analysis_note"]], rule_dirs=[p["rule_dir"]],
                      rule_errors=[p["rule_error"]])
    result.source.path, result.source.windows = p["source_path"], p["windows"]
    result.source.details = {"kernel": p["detail"]}
    return render_report(result)


@pytest.mark.parametrize("where", sorted(PAYLOADS))
def test_every_image_string_is_escaped(hostile_html, where):
    payload = PAYLOADS[where]
    assert payload not in hostile_html, f"{where} printed raw"
    assert str(escape(payload)) in hostile_html, f"{where} not shown (escaped) at all"


def test_the_browser_would_build_no_element_from_the_payloads(hostile_html):
    dom = Dom(hostile_html)
    assert len(dom.tags("script")) == 1  # the report's own
    for tag in ("img", "svg", "iframe", "i", "b", "a"):
        assert [a for a in dom.tags(tag) if tag != "a" or a.get("href", "").startswith(("javascript", "http"))] == [], tag
    assert dom.event_handler_attributes() == []
    assert "xn" not in dom.ids()
    assert len(dom.tags("style")) == 1
    for where in ("command_line", "rule_name", "query", "stack_note", "symbol_info", "process_name"):
        assert PAYLOADS[where] in dom.text, f"{where} does not read literally"
    assert dom.title == "Case report: " + PAYLOADS["source_path"]


def test_the_report_fetches_nothing(hostile_html):
    dom = Dom(hostile_html)
    for tag, attrs in dom.elements:
        for key in ("src", "srcset", "data", "action", "poster"):
            assert key not in attrs, (tag, key)
        if "href" in attrs:
            assert attrs["href"].startswith("#"), (tag, attrs["href"])
    style = re.search(r"<style>(.*?)</style>", hostile_html, re.S).group(1)
    assert "url(" not in style and "@import" not in style and "@font-face" not in style


def test_the_policy_allows_exactly_the_reports_own_script(hostile_html):
    dom = Dom(hostile_html)
    policy = next(a["content"] for a in dom.tags("meta") if a.get("http-equiv") == "Content-Security-Policy")
    digest = base64.b64encode(hashlib.sha256(dom.scripts[0].encode("utf-8")).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]


def test_the_script_never_writes_markup():
    script = environment().get_template("filter.js.j2").render()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "Function("):
        assert sink not in script
    assert "textContent" in script and "classList" in script


def test_autoescape_is_on_for_every_template_name():
    env = environment()
    for name in ("case.html.j2", "anything.txt", "x.js.j2"):
        assert env.autoescape(name) if callable(env.autoescape) else env.autoescape
    assert env.from_string("{{ v }}").render(v="<b>") == "&lt;b&gt;"


def test_undefined_names_fail_the_render():
    from jinja2 import UndefinedError

    with pytest.raises(UndefinedError):
        environment().from_string("{{ missing.field }}").render()


def test_a_process_without_stacks_notes_or_findings_renders():
    bare = process(4, 0, "System")
    bare.walked, bare.note = False, "PEB or process parameters not readable"
    html = render_report(analysis([bare], notes=["PID 4 System: PEB or process parameters not readable"]))
    dom = Dom(html)
    assert "No rule fired." in dom.text and "PEB or process parameters not readable" in dom.text
    assert ProcessInfo  # the builders' types are the analysis's own
