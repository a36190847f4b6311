"""The findings and process tables that ``analyze`` and ``detect`` print, one way for both.

Both print a finding the same way: severity, the rule and the events it fired on
(``process/start``), process, PID, TID and the frames that made it fire (``#3 Unbacked``,
``parent #5 ...``). The tables keep
to the console's width (80 columns included): light borders, short headers, and a minimum
width for the columns people read, so a narrow terminal folds text instead of crushing it.
"""

from __future__ import annotations

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from ..analysis import Analysis, Finding
from ..wording import plural

SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan"}


def findings_view(findings: list[Finding], title: str) -> RenderableType:
    """The findings table, or one line when there are none (an empty table says nothing)."""
    if not findings:
        return Text(f"no findings ({title})")
    table = compact_table(f"{plural(len(findings), 'finding')} ({title})", show_lines=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("rule / events", overflow="fold", min_width=16)
    table.add_column("process", overflow="fold", min_width=17)
    table.add_column("PID", no_wrap=True, justify="right")
    table.add_column("TID", no_wrap=True, justify="right")
    table.add_column("frames that matched", overflow="fold", min_width=12)
    for finding in findings:
        table.add_row(
            Text(finding.severity, style=SEVERITY_STYLE.get(finding.severity.lower(), "")),
            rule_cell(finding),
            Text(finding.process or "-"),
            _number(finding.pid),
            _number(finding.tid),
            matched_frames(finding),
        )
    return table


def rule_cell(finding: Finding) -> Text:
    """The rule's name, and under it the events it fired on (``process/start``): one column
    less, which an 80-column terminal needs."""
    text = Text(finding.rule_name, style="bold")
    text.append("\n" + ", ".join(finding.event_actions), style="dim")
    return text


def matched_frames(finding: Finding) -> Text:
    """The frames that made the rule fire, in red; a rule with no call-stack condition says so."""
    if not finding.frames:
        return Text("(no call-stack condition)", style="dim")
    text = Text()
    for number, frame in enumerate(finding.frames):
        if number:
            text.append("\n")
        text.append(f"{frame.owner}#{frame.index} ", style="dim")
        text.append(frame.symbol_info, style="bold red")
    return text


def process_table(analysis: Analysis) -> Table:
    """One row per process: where to look next (unbacked frames, RWX regions) even without findings."""
    hits: dict[int | None, int] = {}
    for finding in analysis.findings:
        hits[finding.pid] = hits.get(finding.pid, 0) + 1
    title = f"{plural(len(analysis.processes), 'process')}, {plural(analysis.threads, 'thread')}"
    table = compact_table(title)
    for column in ("PID", "PPID"):
        table.add_column(column, no_wrap=True, justify="right")
    table.add_column("process", overflow="fold", min_width=17)
    for column in ("threads", "unbacked", "RWX", "findings"):
        table.add_column(column, no_wrap=True, justify="right")
    table.add_column("note", overflow="fold", min_width=12)
    for proc in analysis.processes:
        style = "bold red" if hits.get(proc.info.pid) else ("yellow" if proc.unbacked_frames or proc.rwx_regions else "")
        note = proc.note or ("" if proc.walked else "not walked (context only)")
        table.add_row(str(proc.info.pid), _number(proc.info.ppid), Text(display_name(proc.info.name, proc.info.path)),
                      str(len(proc.stacks)), str(proc.unbacked_frames), str(proc.rwx_regions),
                      str(hits.get(proc.info.pid, 0)), Text(note), style=style)
    return table


def display_name(name: str, path: str | None) -> str:
    """The process name, whole: ``_EPROCESS.ImageFileName`` keeps 15 characters (``RuntimeBroker.``),
    so the image path's file name is shown when it starts with those characters."""
    if path:
        base = path.replace("/", "\\").rsplit("\\", 1)[-1]
        if len(base) > len(name) and base.lower().startswith(name.lower()):
            return base
    return name


def compact_table(title: str, show_lines: bool = False) -> Table:
    """A rule under the header and two spaces between columns, nothing at the edges: the
    least a table spends on borders, so an 80-column terminal keeps its room for text."""
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_lines=show_lines, show_edge=False,
                 pad_edge=False, collapse_padding=True)


def _number(value: int | None) -> str:
    return str(value) if value is not None else "-"


def print_tables(console: Console, analysis: Analysis) -> None:
    """Findings first, then the processes."""
    title = f"{plural(len(analysis.rules), 'rule')} over {plural(len(analysis.events), 'event')}"
    console.print(findings_view(analysis.findings, title))
    console.print(process_table(analysis))
