"""Frames, stacks and analyses built by hand for the report's unit tests (no image needed)."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser

from callstack_forensics.analysis import Analysis, Finding, MatchedFrame, ProcessResult, SourceInfo
from callstack_forensics.memory import ProcessInfo
from callstack_forensics.engine.stack import UNBACKED, FoundBy, Frame, ModuleRef, StopReason, ThreadStack

SYSTEM32 = "c:\\windows\\system32\\"
T0 = dt.datetime(2024, 5, 14, 10, 22, 31, tzinfo=dt.timezone.utc)


def frame(index: int, symbol: str, protection: str = "R-X", path: str | None = None, **extra) -> Frame:
    """``"ntdll.dll!NtWaitForSingleObject"`` -> an image frame in System32 (or ``path``);
    ``"Unbacked"`` -> a private frame without module."""
    if symbol.startswith(UNBACKED):
        return Frame(index, 0x1000 + index, FoundBy.UNWOUND, symbol_info=symbol, region_kind="private",
                     protection=protection, **extra)
    module, bang, function = symbol.partition("!")
    if not bang:  # "ntdll.dll+0x164a": an address without an export
        module, _, function = symbol.partition("+")
    full = path or SYSTEM32 + module
    return Frame(index, 0x7FF000000000 + index * 0x10, FoundBy.UNWOUND,
                 symbol_info=f"{full.lower()}!{function}" if bang else f"{full.lower()}+{function}",
                 module=ModuleRef(full.rsplit("\\", 1)[-1], full, 0x7FF000000000), region_kind="image",
                 protection=protection, **extra)


def stack(pid: int, tid: int, *frames: Frame, name: str = "x.exe", note: str | None = None) -> ThreadStack:
    return ThreadStack(pid, tid, name, list(frames), StopReason.END_OF_STACK, note)


def frames(*symbols: str) -> list[Frame]:
    return [frame(i, s) for i, s in enumerate(symbols)]


def process(pid: int, ppid: int | None, name: str = "x.exe", stacks: list[ThreadStack] | None = None,
            **info) -> ProcessResult:
    return ProcessResult(ProcessInfo(pid, name, ppid=ppid, **info), stacks or [], walked=True)


def analysis(processes: list[ProcessResult], findings: list[Finding] | None = None, **extra) -> Analysis:
    result = Analysis(SourceInfo("mem.raw", 4096, "memory image", "ab" * 32, "Windows 10.0.19045 x64"),
                      "0.1.0", T0, T0 + dt.timedelta(seconds=2), **extra)
    result.processes = processes
    result.findings = findings or []
    return result


def finding(name: str, pid: int, tid: int | None, matched: list[MatchedFrame] | None = None, **extra) -> Finding:
    return Finding("id-1", name, extra.pop("severity", "high"), extra.pop("description", "why"),
                   extra.pop("query", "any where true"), pid, extra.pop("process", "x.exe"), tid,
                   frames=matched or [], **extra)


class Dom(HTMLParser):
    """What a browser would build from the markup: elements with attributes, and the text.

    Script and style contents are kept apart from the text, so "the payload shows as text"
    cannot be satisfied by a payload that landed inside a script element."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []
        self.scripts: list[str] = []
        self.title = ""
        self._inside: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag in ("script", "style", "title"):
            self._inside.append(tag)
        if tag == "script":
            self.scripts.append("")

    def handle_endtag(self, tag):
        if self._inside and self._inside[-1] == tag:
            self._inside.pop()

    def handle_data(self, data):
        where = self._inside[-1] if self._inside else ""
        if where == "script":
            self.scripts[-1] += data
        elif where == "title":
            self.title += data
        elif where != "style":
            self.texts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def tags(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.elements if tag == name]

    def event_handler_attributes(self) -> list[tuple[str, str]]:
        return [(tag, key) for tag, attrs in self.elements for key in attrs if key.lower().startswith("on")]

    def ids(self) -> set[str]:
        return {attrs["id"] for _, attrs in self.elements if attrs.get("id")}
