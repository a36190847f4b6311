"""Our frames beside LLDB's, and why LLDB's backtrace ends where it ends.

LLDB is compared wherever it produces frames: from frame 0, as far as its
frames equal the reference (winedbg's, completed by the program: truth.py).
Where LLDB stops early or goes astray, the comparison names the reason; a
reason it cannot name fails the oracle (never a silent skip). The reasons:

* **hot-patch prologue.** Wine's exported functions (DECLSPEC_HOTPATCH) begin
  with an 8-byte ``lea rsp,[rsp+0]``; .pdata's RUNTIME_FUNCTION starts there,
  the DWARF function 8 bytes later. LLDB reads the .pdata unwind rows at the
  pc's offset from *its* function start (the DWARF one), so at a return offset
  below ``sub rsp``'s prolog offset + 8 it skips that code, reads the return
  address from the wrong slot and loses the frame and the ones above it.
* **function start.** The same misreading for another reason. Where LLDB
  knows no function and no symbol at all (hand-written assembly without
  debug information: nounwind.S's prolog_spin), it reads the *last* row, as if
  the whole prolog had run: wrong for a thread stopped inside the prolog.
* **misaligned CFA.** LLDB accepts a frame only if its CFA is 16-byte aligned
  (its Windows x64 ABI check). A frame whose caller did not *call* it has no
  such CFA: a dispatcher whose caller is an interrupted context
  (KiUserApcDispatcher above a thread interrupted inside a syscall stub), or
  a function called by code that never aligned the stack (nounwind.S). LLDB's
  unwind log names the frame ("did not get a valid CFA") and the CFA it
  computed; the rule holds only when that CFA is misaligned and its return
  slot holds the reference's next frame: LLDB had found the right caller.
* **no unwind data.** The code has no .pdata entry (or lies outside every
  module): LLDB guesses with RBP and drops the frame it cannot confirm.
* **winedbg stops too.** The reference from there on is the program's own
  report because winedbg cannot unwind past that frame either
  (KiUserCallbackDispatcher's return slot holds Wine's 0xdeadbabe).

LLDB checks each new frame by unwinding one more step from it and, when that
step fails, drops the frame and retries its caller: the frame it cannot step
from lies up to one frame below or above the first frame LLDB misses. So the
reasons are looked for in the reference frames k-1, k and k+1, where k is the
first frame LLDB does not reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from .lldb_reference import LldbBacktraces, LldbFrame, LldbStop
from .pdata import PdataFiles
from .truth import PROGRAM, ThreadTruth

HOT_PATCH = bytes.fromhex("488da42400000000")  # lea rsp,[rsp+0x0]


class Kind(str, Enum):
    HOT_PATCH = "hot-patch prologue"
    FUNCTION_START = "function start"
    MISALIGNED_CFA = "misaligned CFA"
    NO_UNWIND_DATA = "no unwind data"
    WINEDBG_STOPS = "winedbg stops too"


@dataclass(frozen=True)
class LldbException:
    """Why LLDB does not reproduce the reference from frame ``reach`` on."""

    kind: Kind
    frame: int  # the reference frame the reason is about
    reason: str


@dataclass
class LldbThread:
    """LLDB's frames of one thread and how far they carry the comparison."""

    frames: list[LldbFrame]
    reach: int  # reference frames LLDB reproduces, counted from frame 0
    reference_total: int
    exception: LldbException | None = None
    unexplained: str | None = None

    @property
    def complete(self) -> bool:
        return self.reach == self.reference_total == len(self.frames)

    @property
    def compared(self) -> list[LldbFrame]:
        """LLDB's frames that count: all of them, except past a named exception."""
        return self.frames[: self.reach] if self.exception else self.frames

    @property
    def not_compared(self) -> int:
        """Reference frames past a named exception: checked against winedbg or the program only."""
        return self.reference_total - self.reach if self.exception else 0


def agreement(ours: list[Any], lldb: LldbThread) -> int:
    """Our frames equal to LLDB's, index by index, among the LLDB frames that count."""
    return sum(1 for i, f in enumerate(lldb.compared) if i < len(ours) and ours[i].address == f.pc)


def compare_thread(truth: ThreadTruth, lldb: LldbBacktraces, pdata: PdataFiles) -> LldbThread:
    """LLDB's frames of the thread against the reference, with the reason wherever LLDB stops short."""
    frames = lldb.threads.get(truth.tid, [])
    reference = [f.address for f in truth.frames]
    reach = 0
    while reach < min(len(frames), len(reference)) and frames[reach].pc == reference[reach]:
        reach += 1
    result = LldbThread(frames, reach, len(reference))
    if result.complete:
        return result
    what = _what_lldb_did(frames, reach, lldb.stops.get(truth.tid))
    if reach == len(reference):
        result.unexplained = f"LLDB shows {len(frames) - reach} frame(s) past the end of the reference"
        return result
    exception = _explain(truth, reach, lldb, pdata)
    if exception is None:
        result.unexplained = f"{what}; no known reason ({_module_note(truth, reach, lldb)})"
    else:
        result.exception = LldbException(exception.kind, exception.frame, f"{exception.reason} ({what})")
    return result


def _what_lldb_did(frames: list[LldbFrame], reach: int, stop: LldbStop | None) -> str:
    said = f"; its log: frame {stop.frame} {stop.message}" if stop else ""
    if reach < len(frames):
        return f"LLDB shows {frames[reach].pc:#x} at frame {reach}{said}"
    return f"LLDB stops after frame {reach - 1}{said}"


def _explain(truth: ThreadTruth, k: int, lldb: LldbBacktraces, pdata: PdataFiles) -> LldbException | None:
    window = range(max(k - 1, 0), min(k + 2, len(truth.frames)))
    for j in window:
        found = _start_mismatch(j, truth.frames[j].address, lldb, pdata)
        if found is not None:
            return found
    found = _misaligned_cfa(truth, lldb.stops.get(truth.tid), window)
    if found is not None:
        return found
    for j in window:
        found = _no_unwind_data(j, truth.frames[j].address, lldb, pdata)
        if found is not None:
            return found
    if k > 0 and truth.frames[k].source == PROGRAM and truth.frames[k - 1].source != PROGRAM:
        return LldbException(
            Kind.WINEDBG_STOPS, k - 1,
            f"frames {k} on come from the program's own report: winedbg cannot unwind past frame {k - 1} "
            f"({truth.frames[k - 1].address:#x}) either",
        )
    return None


def _start_mismatch(j: int, address: int, lldb: LldbBacktraces, pdata: PdataFiles) -> LldbException | None:
    """LLDB reads the .pdata rows at an offset from a function start other than the RUNTIME_FUNCTION's."""
    module = lldb.module_at(address)
    function = lldb.functions.get(address)
    if module is None or not module.found or function is None:
        return None
    pfile = pdata.get(Path(module.path))
    entry = pfile.function_at(address - module.base) if pfile else None
    if entry is None or entry.chained:
        return None
    offset = address - module.base - entry.begin
    where = f"frame {j} ({module.name}!{function.name or '?'}, {address:#x}) is at offset {offset:#x} of its .pdata function"
    if function.start is None:
        # No function and no symbol: LLDB has no offset and reads the last row (the whole prolog done).
        applied = [o for o in entry.code_offsets if o > offset]
        if not applied:
            return None
        return LldbException(
            Kind.FUNCTION_START, j,
            f"{where}; LLDB knows no function or symbol there, reads the last unwind row and so undoes the "
            f"prolog code(s) at offset(s) {_hex(applied)} that have not run yet",
        )
    shift = function.start - (module.base + entry.begin)
    skipped = [o for o in entry.code_offsets if offset - shift < o <= offset]
    if shift <= 0 or not skipped:
        return None
    hot_patch = shift == 8 and entry.first_bytes == HOT_PATCH
    start = "after the 8-byte hot-patch `lea rsp,[rsp+0]`" if hot_patch else f"{shift} byte(s) in ({function.name})"
    return LldbException(
        Kind.HOT_PATCH if hot_patch else Kind.FUNCTION_START, j,
        f"{where}; LLDB starts the function {start}, reads the unwind rows at {offset - shift:#x} and so skips "
        f"the prolog code(s) at offset(s) {_hex(skipped)}",
    )


def _hex(values: list[int]) -> str:
    return ", ".join(hex(v) for v in values)


def _misaligned_cfa(truth: ThreadTruth, stop: LldbStop | None, window: range) -> LldbException | None:
    if stop is None or stop.cfa is None or "valid CFA" not in stop.message or stop.cfa % 16 == 0:
        return None
    f = stop.frame
    if f not in window or f + 1 >= len(truth.frames) or stop.return_slot != truth.frames[f + 1].address:
        return None
    return LldbException(
        Kind.MISALIGNED_CFA, f,
        f"LLDB computes frame {f}'s CFA as {stop.cfa:#x}, whose return slot holds the reference's frame {f + 1} "
        f"({stop.return_slot:#x}), and refuses it: not 16-byte aligned (its caller did not call it with an "
        f"aligned stack)",
    )


def _no_unwind_data(j: int, address: int, lldb: LldbBacktraces, pdata: PdataFiles) -> LldbException | None:
    module = lldb.module_at(address)
    if module is None:
        return LldbException(Kind.NO_UNWIND_DATA, j, f"frame {j} ({address:#x}) lies outside every module")
    pfile = pdata.get(Path(module.path)) if module.found else None
    if pfile is not None and pfile.function_at(address - module.base) is None:
        return LldbException(
            Kind.NO_UNWIND_DATA, j,
            f"frame {j} ({module.name}+{address - module.base:#x}) has no .pdata entry",
        )
    return None


def _module_note(truth: ThreadTruth, k: int, lldb: LldbBacktraces) -> str:
    """Modules near frame k that LLDB has no file for: the usual cause of an unexplained stop."""
    missing = {
        m.name
        for f in truth.frames[max(k - 1, 0): k + 2]
        if (m := lldb.module_at(f.address)) is not None and not m.found
    }
    return f"LLDB has no file for {', '.join(sorted(missing))}" if missing else "every module near it was loaded"
