"""`make oracle`: our stacks beside Wine's and LLDB's, frame by frame, for every captured thread.

For each test program (captured by tests/wine/capture.py, cached), the full
minidump is opened with our reader and walked with the engine; each thread's
frames are printed beside the reference (winedbg's backtrace, completed by the
program's own report where winedbg cannot unwind: see tests/wine/truth.py) and
beside LLDB's backtrace of the same dump (tests/wine/lldb_reference.py), with
the named reason wherever LLDB stops short (tests/wine/lldb_compare.py).

The summary ends with two lines: ``LLDB frames agree: A/B`` (B frames LLDB
unwinds, A of them equal to ours) and, last, ``frames agree: N/M``: M
reference frames over every thread without a known engine defect
(tests/wine/known_defects.py, counted on a line of their own), N of them equal
to ours by address at the same index.

Exit status: 0 when N == M, no such thread has frames beyond the reference,
the reference sources never contradict each other, every known defect
reproduces exactly as recorded, every LLDB frame outside those threads equals
ours and every place LLDB stops short has a named reason; 1 otherwise; 2 when
the captures, the engine or LLDB cannot be had at all.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

from callstack_forensics.memory.minidump import MinidumpMemory

from .build import BuildError
from .capture import CaptureResult, capture_all
from .known_defects import KnownDefect, defect_status, known_defect
from .lldb_compare import LldbThread, agreement, compare_thread
from .lldb_reference import LldbError, lldb_backtraces, lldb_missing, lldb_version
from .pdata import PdataFiles
from .truth import PROGRAM, WINEDBG, ThreadTruth, capture_truth
from .wineprefix import WineError

Walker = Callable[[Any], list]


def load_walker() -> tuple[Walker | None, str | None]:
    """The engine's ``walk_process``, or None and why it cannot be imported."""
    try:
        from callstack_forensics.engine.walker import walk_process
    except ImportError as exc:
        return None, f"callstack_forensics.engine.walker cannot be imported: {exc}"
    return walk_process, None


@dataclass
class ThreadComparison:
    """One thread: its reference, our frames, and how far they agree."""

    program: str
    truth: ThreadTruth
    ours: list = field(default_factory=list)
    stop: str | None = None
    note: str | None = None
    lldb: LldbThread | None = None

    @property
    def agree(self) -> int:
        return sum(1 for i, f in enumerate(self.truth.frames) if i < len(self.ours) and self.ours[i].address == f.address)

    @property
    def total(self) -> int:
        return len(self.truth.frames)

    @property
    def extra(self) -> int:
        """Our frames beyond the end of the reference."""
        return max(0, len(self.ours) - len(self.truth.frames))

    @property
    def exact(self) -> bool:
        return self.agree == self.total and self.extra == 0 and not self.truth.conflicts

    @property
    def defect(self) -> KnownDefect | None:
        return known_defect(self.program, self.truth.role)

    @property
    def defect_change(self) -> str | None:
        """For a thread with a known defect: None while it reproduces as recorded, else what changed."""
        if self.defect is None:
            return None
        return defect_status(self.defect, self.ours, [f.address for f in self.truth.frames])

    @property
    def lldb_agree(self) -> int:
        return agreement(self.ours, self.lldb) if self.lldb else 0

    @property
    def lldb_total(self) -> int:
        return len(self.lldb.compared) if self.lldb else 0

    @property
    def ok(self) -> bool:
        """What the exit status asks of this thread (see the module docstring)."""
        if self.truth.conflicts or (self.lldb is not None and self.lldb.unexplained):
            return False
        if self.defect is not None:
            return self.defect_change is None
        return self.exact and (self.lldb is None or self.lldb_agree == self.lldb_total)


def compare_capture(capture: CaptureResult, walk: Walker) -> list[ThreadComparison]:
    """Walk the capture's full dump and pair each thread's frames with its reference."""
    truths = capture_truth(capture.ready, capture.winedbg, capture.breakin_tid)
    with MinidumpMemory(capture.dump) as memory:
        stacks = {stack.tid: stack for stack in walk(memory)}
    out = []
    for truth in truths:
        stack = stacks.get(truth.tid)
        if stack is None:
            out.append(ThreadComparison(capture.name, truth, note="thread not in the dump"))
            continue
        stop = stack.stop_reason.value if stack.stop_reason else None
        out.append(ThreadComparison(capture.name, truth, list(stack.frames), stop, stack.note))
    return out


def attach_lldb(comparisons: list[ThreadComparison], capture: CaptureResult, pdata: PdataFiles) -> None:
    """LLDB's backtraces of the capture's dump beside each thread's reference (raises LldbError)."""
    backtraces = lldb_backtraces(capture, [c.truth for c in comparisons])
    for cmp in comparisons:
        cmp.lldb = compare_thread(cmp.truth, backtraces, pdata)


# ---- text output -------------------------------------------------------------------


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


_WINEDBG_MODULE = re.compile(r"(?:^|\s)in (\S+) \(")
_WINEDBG_OFFSET = re.compile(r"^in \S+ \((\+0x[0-9a-fA-F]+)\)")


def short_winedbg(text: str) -> str:
    """``Sleep+0x24(timeout=...) [sync.c:57] in kernelbase (...)`` -> ``kernelbase!Sleep+0x24``.

    Inline frames folded into one (joined by `` | ``) keep every name.
    """
    parts = []
    for part in text.split(" | "):
        module = _WINEDBG_MODULE.search(part)
        name = module[1] if module else "?"
        offset = _WINEDBG_OFFSET.match(part)
        if offset:
            parts.append(f"{name}{offset[1]}")
        else:
            parts.append(f"{name}!{part.split('(', 1)[0].strip()}")
    return " | ".join(parts)


def short_symbol(symbol: str) -> str:
    """Our symbol_info without the directory: ``ntdll.dll!NtDelayExecution+0x14``."""
    return symbol.rsplit("\\", 1)[-1]


def _our_cells(frame: Any) -> tuple[str, str, str, str]:
    verified = "-" if frame.call_verified is None else ("yes" if frame.call_verified else "NO")
    method = getattr(frame.method, "value", str(frame.method))
    return f"{frame.address:#018x}", _cut(short_symbol(frame.symbol_info), 44), method, verified


def _lldb_cell(cmp: ThreadComparison, i: int) -> str:
    """LLDB's frame i: ``=`` equal to ours, ``X`` not, ``~`` past a named exception (not compared)."""
    if cmp.lldb is None or i >= len(cmp.lldb.frames):
        return ""
    frame = cmp.lldb.frames[i]
    if i >= len(cmp.lldb.compared):
        mark = "~"
    else:
        mark = "=" if i < len(cmp.ours) and cmp.ours[i].address == frame.pc else "X"
    return f"{mark} {frame.pc:#x}"


def _lldb_header(cmp: ThreadComparison) -> str:
    if cmp.lldb is None:
        return ""
    return f", LLDB {cmp.lldb_agree}/{cmp.lldb_total}"


def render_thread(cmp: ThreadComparison, out: TextIO) -> None:
    truth = cmp.truth
    out.write(f"\n== {cmp.program}  tid {truth.tid} ({truth.tid:#x})  {truth.role}"
              f"   [{cmp.agree}/{cmp.total}{', +%d extra' % cmp.extra if cmp.extra else ''}{_lldb_header(cmp)}]\n")
    out.write(f"   {'#':>3}   {'ours':18} {'symbol_info':44} {'method':8} {'call':4}   "
              f"{'reference':18} {'from':8} {'label':50} lldb\n")
    for i in range(max(len(cmp.ours), cmp.total, len(cmp.lldb.frames) if cmp.lldb else 0)):
        ours = _our_cells(cmp.ours[i]) if i < len(cmp.ours) else ("", "", "", "")
        ref = truth.frames[i] if i < cmp.total else None
        mark = " " if ref is None else ("=" if ours[0] and int(ours[0], 16) == ref.address else "X")
        label = (short_winedbg(ref.label) if ref.source == WINEDBG else ref.label) if ref else ""
        ref_cells = (f"{ref.address:#018x}", ref.source, _cut(label, 50)) if ref else ("", "", "")
        out.write(f"   {i:>3} {mark} {ours[0]:18} {ours[1]:44} {ours[2]:8} {ours[3]:4}   "
                  f"{ref_cells[0]:18} {ref_cells[1]:8} {ref_cells[2]:50} {_lldb_cell(cmp, i)}\n".rstrip() + "\n")
    if cmp.stop or cmp.note:
        out.write(f"   stop: {cmp.stop or '-'}{'; note: ' + cmp.note if cmp.note else ''}\n")
    for conflict in truth.conflicts:
        out.write(f"   REFERENCE CONFLICT: {conflict}\n")
    _render_lldb_and_defect(cmp, out)


def _render_lldb_and_defect(cmp: ThreadComparison, out: TextIO) -> None:
    if cmp.lldb is not None and cmp.lldb.exception is not None:
        exc = cmp.lldb.exception
        out.write(f"   LLDB EXCEPTION ({exc.kind.value}): {exc.reason}; "
                  f"{cmp.lldb.not_compared} reference frame(s) from {cmp.lldb.reach} on not compared with LLDB\n")
    if cmp.lldb is not None and cmp.lldb.unexplained:
        out.write(f"   LLDB UNEXPLAINED: {cmp.lldb.unexplained}\n")
    if cmp.defect is not None:
        d = cmp.defect
        i = d.first_wrong_frame
        ours = f"{cmp.ours[i].address:#x} {short_symbol(cmp.ours[i].symbol_info)}" if i < len(cmp.ours) else "none"
        ref = f"{truth_address(cmp, i):#x}" if i < cmp.total else "none"
        out.write(f"   KNOWN ENGINE DEFECT ({d.issue}), frame {i}: ours {ours}, reference {ref}\n")
        out.write(f"      {d.description}\n")
        if cmp.defect_change:
            out.write(f"   KNOWN DEFECT MARKER STALE: {cmp.defect_change}\n")


def truth_address(cmp: ThreadComparison, i: int) -> int:
    return cmp.truth.frames[i].address


def summarize(comparisons: list[ThreadComparison], out: TextIO, lldb_version: str | None = None) -> bool:
    """The totals, ending with ``frames agree: N/M``; True when the exit status is 0 (module docstring)."""
    sound = [c for c in comparisons if c.defect is None]
    defective = [c for c in comparisons if c.defect is not None]
    program_frames = sum(1 for c in comparisons for f in c.truth.frames if f.source == PROGRAM)
    out.write("\n")
    out.write(f"programs: {len({c.program for c in comparisons})}, threads: {len(comparisons)}, "
              f"reference frames: {sum(c.total for c in comparisons)}, "
              f"identical stacks: {sum(1 for c in comparisons if c.exact)}\n")
    out.write(f"reference frames reported by the programs themselves: {program_frames}"
              f" (of which winedbg also shows {sum(c.truth.confirmed for c in comparisons)})\n")
    out.write(f"our frames beyond the reference: {sum(c.extra for c in sound)}; "
              f"reference conflicts: {sum(len(c.truth.conflicts) for c in comparisons)}\n")
    reproduced = sum(1 for c in defective if c.defect_change is None)
    out.write(f"known engine defects (tests/wine/known_defects.py): {len(defective)} threads, their frames agree "
              f"{sum(c.agree for c in defective)}/{sum(c.total for c in defective)}; "
              f"reproduced as recorded: {reproduced}/{len(defective)}\n")
    _summarize_lldb(comparisons, out, lldb_version)
    out.write(f"frames agree: {sum(c.agree for c in sound)}/{sum(c.total for c in sound)}\n")
    return all(c.ok for c in comparisons)


def _summarize_lldb(comparisons: list[ThreadComparison], out: TextIO, version: str | None) -> None:
    with_lldb = [c for c in comparisons if c.lldb is not None]
    if not with_lldb:
        out.write(f"LLDB: not run ({version or 'unavailable'})\n")
        return
    kinds = Counter(c.lldb.exception.kind.value for c in with_lldb if c.lldb.exception)
    listed = ", ".join(f"{kind}: {n}" for kind, n in sorted(kinds.items()))
    unexplained = sum(1 for c in with_lldb if c.lldb.unexplained)
    produced = sum(len(c.lldb.frames) for c in with_lldb)
    out.write(f"LLDB ({version}): {sum(1 for c in with_lldb if c.lldb.complete)}/{len(with_lldb)} threads "
              f"complete; {produced} frames produced, {sum(c.lldb.reach for c in with_lldb)} of them equal to the "
              f"reference\n")
    out.write(f"LLDB exceptions: {sum(kinds.values())} threads ({listed or 'none'}), "
              f"{sum(c.lldb.not_compared for c in with_lldb)} reference frames past them not compared with LLDB; "
              f"unexplained: {unexplained}\n")
    out.write(f"LLDB frames agree: {sum(c.lldb_agree for c in with_lldb)}/{sum(c.lldb_total for c in with_lldb)}\n")


def main(argv: list[str]) -> int:
    walk, why = load_walker()
    if walk is None:
        print(f"oracle: {why}", file=sys.stderr)
        return 2
    try:
        captures = capture_all(force="--force" in argv)
    except (BuildError, WineError) as exc:
        print(f"oracle: {exc}", file=sys.stderr)
        return 2
    missing = lldb_missing()
    pdata = PdataFiles()
    comparisons: list[ThreadComparison] = []
    for capture in captures.values():
        compared = compare_capture(capture, walk)
        if missing is None:
            try:
                attach_lldb(compared, capture, pdata)
            except LldbError as exc:
                missing = str(exc)
        for cmp in compared:
            render_thread(cmp, sys.stdout)
        comparisons.extend(compared)
    ok = summarize(comparisons, sys.stdout, missing or lldb_version())
    if missing is not None:
        print(f"oracle: LLDB could not be run: {missing}", file=sys.stderr)
        return 2
    return 0 if ok else 1



if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
