"""Per-stack fields: ``call_stack_summary``, ``call_stack_contains_unbacked``,
``call_stack_final_user_module`` (formats from ../shared/docs/callstack-fields.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from .stack import UNBACKED, UNKNOWN, FinalUserModule, Frame

# The Windows API layer a call passes through on its way to the kernel (the "blue part" of the
# seed's pictures). The final user module is the first frame, from the top, outside this set.
WINDOWS_API_MODULES = frozenset(
    {
        "ntdll.dll",
        "win32u.dll",
        "kernelbase.dll",
        "kernel32.dll",
        "wow64.dll",
        "wow64cpu.dll",
        "wow64win.dll",
        "wow64base.dll",
        "wow64con.dll",
        "user32.dll",
        "gdi32.dll",
        "gdi32full.dll",
        "advapi32.dll",
        "sechost.dll",
        "combase.dll",
        "rpcrt4.dll",
        "ucrtbase.dll",
        "msvcrt.dll",
        "ws2_32.dll",
        "mswsock.dll",
    }
)


def summary_string(frames: Iterable[Frame]) -> str:
    """Module names joined by ``|``, consecutive repeats collapsed."""
    names: list[str] = []
    for frame in frames:
        name = frame.summary_name
        if not names or names[-1] != name:
            names.append(name)
    return "|".join(names)


def final_user_module(frames: Sequence[Frame]) -> FinalUserModule | None:
    for frame in frames:
        if frame.module is not None and frame.module.name.lower() in WINDOWS_API_MODULES:
            continue
        if frame.module is not None:
            return FinalUserModule(
                frame.module.name, frame.module.path, frame.allocation_private_bytes
            )
        return FinalUserModule(UNBACKED if frame.unbacked else UNKNOWN)
    return None


def contains_unbacked(frames: Sequence[Frame]) -> bool | None:
    """True if a frame is Unbacked; None (unknown, never False) if a frame lies outside every
    module in memory the source says nothing about (a normal minidump without a
    MemoryInfoList): it may well be unbacked."""
    if any(f.unbacked for f in frames):
        return True
    if any(f.module is None and f.symbol_info == UNKNOWN for f in frames):
        return None
    return False


@dataclass(slots=True)
class StackSummary:
    summary: str
    contains_unbacked: bool | None
    final_user_module: FinalUserModule | None

    def to_ecs(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "call_stack_summary": self.summary,
            "call_stack_contains_unbacked": self.contains_unbacked,
        }
        if self.final_user_module is not None:
            out["call_stack_final_user_module"] = self.final_user_module.to_ecs()
        return out


def summarize(frames: Sequence[Frame]) -> StackSummary:
    return StackSummary(
        summary_string(frames),
        contains_unbacked(frames),
        final_user_module(frames),
    )
