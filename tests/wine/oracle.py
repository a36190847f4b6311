"""`make oracle`: our stacks beside Wine's, frame by frame, for every captured thread.

For each test program (captured by tests/wine/capture.py, cached), the full
minidump is opened with our reader and walked with the engine; each thread's
frames are printed beside the reference (winedbg's backtrace, completed by the
program's own report where winedbg cannot unwind: see tests/wine/truth.py).
The last line is ``frames agree: N/M``: M reference frames over all compared
threads, N of them equal to ours by address at the same index.

Exit status: 0 when N == M, no thread has frames beyond the reference and the
reference sources never contradict each other; 1 otherwise; 2 when the
captures or the engine cannot be had at all.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

from callstack_forensics.memory.minidump import MinidumpMemory

from .build import BuildError
from .capture import CaptureResult, capture_all
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


def render_thread(cmp: ThreadComparison, out: TextIO) -> None:
    truth = cmp.truth
    out.write(f"\n== {cmp.program}  tid {truth.tid} ({truth.tid:#x})  {truth.role}"
              f"   [{cmp.agree}/{cmp.total}{', +%d extra' % cmp.extra if cmp.extra else ''}]\n")
    out.write(f"   {'#':>2}   {'ours':18} {'symbol_info':44} {'method':8} {'call':4}   "
              f"{'reference':18} {'from':8} label\n")
    for i in range(max(len(cmp.ours), cmp.total)):
        ours = _our_cells(cmp.ours[i]) if i < len(cmp.ours) else ("", "", "", "")
        ref = truth.frames[i] if i < cmp.total else None
        mark = " " if ref is None else ("=" if ours[0] and int(ours[0], 16) == ref.address else "X")
        label = (short_winedbg(ref.label) if ref.source == WINEDBG else ref.label) if ref else ""
        ref_cells = (f"{ref.address:#018x}", ref.source, _cut(label, 60)) if ref else ("", "", "")
        out.write(f"   {i:>2} {mark} {ours[0]:18} {ours[1]:44} {ours[2]:8} {ours[3]:4}   "
                  f"{ref_cells[0]:18} {ref_cells[1]:8} {ref_cells[2]}\n")
    if cmp.stop or cmp.note:
        out.write(f"   stop: {cmp.stop or '-'}{'; note: ' + cmp.note if cmp.note else ''}\n")
    for conflict in truth.conflicts:
        out.write(f"   REFERENCE CONFLICT: {conflict}\n")


def summarize(comparisons: list[ThreadComparison], out: TextIO) -> bool:
    """The totals, ending with ``frames agree: N/M``; True when everything agrees."""
    agree = sum(c.agree for c in comparisons)
    total = sum(c.total for c in comparisons)
    extra = sum(c.extra for c in comparisons)
    conflicts = sum(len(c.truth.conflicts) for c in comparisons)
    program_frames = sum(1 for c in comparisons for f in c.truth.frames if f.source == PROGRAM)
    confirmed = sum(c.truth.confirmed for c in comparisons)
    exact = sum(1 for c in comparisons if c.exact)
    out.write("\n")
    out.write(f"threads: {len(comparisons)}, identical stacks: {exact}\n")
    out.write(f"reference frames reported by the programs themselves: {program_frames}"
              f" (of which winedbg also shows {confirmed})\n")
    out.write(f"our frames beyond the reference: {extra}; reference conflicts: {conflicts}\n")
    out.write(f"frames agree: {agree}/{total}\n")
    return agree == total and extra == 0 and conflicts == 0


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
    comparisons: list[ThreadComparison] = []
    for capture in captures.values():
        for cmp in compare_capture(capture, walk):
            render_thread(cmp, sys.stdout)
            comparisons.append(cmp)
    return 0 if summarize(comparisons, sys.stdout) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
