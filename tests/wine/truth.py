"""The reference stack of each captured thread: winedbg's backtrace, completed by the program.

Two decisions live here, both about what winedbg prints:

* **Inline frames.** winedbg (Wine 8) lists an inlined function as a frame of
  its own at the same address as the function it was inlined into (e.g.
  ``__wine_pop_frame`` then ``RtlUserThreadStart+0x88``, both at one return
  address). An unwinder sees one physical frame there, so consecutive frames
  with the same address and *different* function names collapse into one.
  The same address under the same name is recursion (``recurse+0x1a`` a
  hundred times: one physical frame per level), and frames without a name
  never fold (inline frames come from debug information, which names them).
  LLDB, which says which frames are inlined, checks this independently.
* **Where winedbg stops.** winedbg cannot unwind out of code that has no
  unwind data and moved RSP (the shellcode), nor out of a stub in private
  memory (the direct-syscall threads): there its backtrace simply ends. The
  programs print, for those threads, the exact chain they know (stub address,
  return sites, and their callers as Wine's own RtlCaptureStackBackTrace saw
  them). The reference is then winedbg's frames up to where that chain starts,
  followed by the chain. Where both sources cover a frame they must agree, or
  the capture itself is inconsistent (reported as a conflict).

What counts as the user-mode stack: everything winedbg prints. Wine keeps a
thread's user-mode context at the syscall boundary (RIP right after the
``syscall`` instruction in ntdll's stub, as Windows does), so winedbg never
shows Wine's Unix-side frames; the stack ends at ``RtlUserThreadStart``,
whose frames count like any other.

The break-in thread winedbg creates on attach (``DbgUiRemoteBreakin``) is in
the dump too (it exists while the process is stopped), so it is compared like
every other thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WINEDBG = "winedbg"
PROGRAM = "program"


@dataclass(frozen=True)
class TruthFrame:
    """One reference frame: its address, where it came from and a label to show."""

    address: int
    source: str
    label: str


@dataclass
class ThreadTruth:
    """The reference stack of one thread and what checking its sources found."""

    tid: int
    role: str
    frames: list[TruthFrame]
    conflicts: list[str] = field(default_factory=list)
    confirmed: int = 0  # program-reported addresses that winedbg also shows


def function_name(text: str) -> str | None:
    """The function winedbg names in a frame's text (``Sleep+0x24(timeout=...) ...`` -> ``Sleep``), or None."""
    if text.startswith("in "):
        return None
    return text.split("(", 1)[0].split("+0x", 1)[0].strip() or None


def _inlined_into(previous: dict, frame: dict) -> bool:
    """``frame`` is the function ``previous`` (one of its inline frames) was inlined into."""
    if previous["address"] != frame["address"]:
        return False
    inner = function_name(previous["text"].rsplit(" | ", 1)[-1])
    outer = function_name(frame["text"])
    return inner is not None and outer is not None and inner != outer


def physical_frames(frames: list[dict]) -> list[dict]:
    """winedbg's frames with inline frames folded into the physical frame that holds them."""
    out: list[dict] = []
    for frame in frames:
        if out and _inlined_into(out[-1], frame):
            out[-1] = {**out[-1], "text": out[-1]["text"] + " | " + frame["text"]}
            continue
        out.append(frame)
    return out


def _expected(thread: dict) -> list[TruthFrame]:
    return [TruthFrame(int(e["address"], 16), PROGRAM, e["kind"]) for e in thread.get("expect", [])]


def _winedbg(frames: list[dict]) -> list[TruthFrame]:
    return [TruthFrame(f["address"], WINEDBG, f["text"]) for f in physical_frames(frames)]


def _check_overlap(truth: ThreadTruth, debugger: list[TruthFrame], start: int) -> None:
    """Where winedbg and the program both give frame ``start + i``, they must agree."""
    for i, frame in enumerate(truth.frames[start:], start):
        if i >= len(debugger):
            break
        if debugger[i].address == frame.address:
            truth.confirmed += 1
        else:
            truth.conflicts.append(
                f"frame {i}: winedbg {debugger[i].address:#x}, program {frame.address:#x} ({frame.label})"
            )


def _check_in_order(truth: ThreadTruth, expected: list[TruthFrame]) -> None:
    """Addresses the program names (not a whole tail) must appear in winedbg's stack, in order."""
    position = 0
    addresses = [f.address for f in truth.frames]
    for frame in expected:
        try:
            position = addresses.index(frame.address, position) + 1
            truth.confirmed += 1
        except ValueError:
            truth.conflicts.append(f"program expects {frame.address:#x} ({frame.label}); winedbg does not show it")


def thread_truth(tid: int, winedbg_frames: list[dict], program_thread: dict | None) -> ThreadTruth:
    """Merge winedbg's backtrace of one thread with what the program says about it."""
    debugger = _winedbg(winedbg_frames)
    role = program_thread["role"] if program_thread else "?"
    truth = ThreadTruth(tid, role, list(debugger))
    expected = _expected(program_thread) if program_thread else []
    if not expected:
        return truth
    if not program_thread.get("expect_is_tail"):
        _check_in_order(truth, expected)
        return truth
    start = program_thread.get("expect_first_index")
    if start is None:
        addresses = [f.address for f in debugger]
        start = addresses.index(expected[0].address) if expected[0].address in addresses else len(debugger)
    truth.frames = debugger[:start] + expected
    _check_overlap(truth, debugger, start)
    return truth


def capture_truth(ready: dict, winedbg: dict[int, list[dict]], breakin_tid: int | None) -> list[ThreadTruth]:
    """The reference stack of every thread winedbg showed, in its order."""
    by_tid = {t["tid"]: t for t in ready["threads"]}
    out = []
    for tid, frames in winedbg.items():
        truth = thread_truth(tid, frames, by_tid.get(tid))
        if tid == ready["main_tid"]:
            truth.role = "main"
        elif tid == breakin_tid:
            truth.role = "winedbg break-in"
        elif tid not in by_tid:
            truth.role = "other"
        out.append(truth)
    return out
