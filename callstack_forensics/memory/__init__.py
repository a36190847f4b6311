"""The memory sources: what the stack engine reads a process through.

``interface`` is the narrow :class:`ProcessMemory` contract (re-exported here, so
``from callstack_forensics.memory import ProcessMemory`` reads as the contract it is);
``minidump`` and ``modulefiles`` implement it for process dumps (the Volatility
implementation lives with the Volatility adapter); ``pagecache`` sits in front of any
of them.
"""

from .interface import (
    PAGE_SIZE,
    UNKNOWN_PROTECTION,
    ExceptionInfo,
    HandleInfo,
    MemoryMissing,
    Module,
    ProcessInfo,
    ProcessMemory,
    Region,
    RegionKind,
    ThreadInfo,
    Wow64Context,
    merge_sorted,
    page_protection,
)

__all__ = [
    "PAGE_SIZE",
    "UNKNOWN_PROTECTION",
    "ExceptionInfo",
    "HandleInfo",
    "MemoryMissing",
    "Module",
    "ProcessInfo",
    "ProcessMemory",
    "Region",
    "RegionKind",
    "ThreadInfo",
    "Wow64Context",
    "merge_sorted",
    "page_protection",
]
