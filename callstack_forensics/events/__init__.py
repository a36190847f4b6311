"""Synthetic ECS events, after the fact, from what a memory image shows.

    from callstack_forensics.events import ProcessView, Snapshot, build_events
    events = build_events(Snapshot([ProcessView(memory.process, context, stacks), ...], observed_at))

No Volatility here: the plugins (``plugins/callstacks``) feed it through the memory
interface, and tests feed it hand-made processes.
"""

from .builder import build_events
from .model import ProcessView, Snapshot
from .syscalls import SyscallTables

__all__ = ["ProcessView", "Snapshot", "SyscallTables", "build_events"]
