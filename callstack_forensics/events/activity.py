"""What a blocked system call is doing, decoded into ECS fields with the evidence behind them.

Decoders (one module per family: :mod:`.decode_file`, :mod:`.decode_registry`...) get a
:class:`CallContext` and return an :class:`Activity`, or None when the call's arguments
do not support a specific event (the thread then gets a thread-state event).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..memory import HandleInfo, ProcessMemory
from ..engine.stack import ThreadStack
from .paths import VolumeMap
from .sysargs import ArgumentReader
from .syscalls import Syscall


@dataclass(slots=True)
class ChildRequest:
    """A process the thread is creating, as its arguments describe it (for linking the child)."""

    image: str | None = None  # DOS path of the image
    command_line: str | None = None
    parent_pid: int | None = None  # the parent the call names (NtCreateProcessEx's ParentProcess)
    clone: bool = False  # the thread is forking its own process (RtlCloneUserProcess)


@dataclass(slots=True)
class Activity:
    """An event's category-specific part."""

    category: str
    action: str
    type: list[str]
    fields: dict[str, Any] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)
    child: ChildRequest | None = None


@dataclass(slots=True)
class CallContext:
    """Everything a decoder may read, and where it records what it read."""

    memory: ProcessMemory
    stack: ThreadStack
    syscall: Syscall
    args: ArgumentReader
    volumes: VolumeMap
    related: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.memory.process.pid

    def handle(self, n: int, role: str) -> tuple[int | None, HandleInfo | None]:
        """Argument ``n`` as a handle: its value and what the process's handle table says it is."""
        value = self.args.arg(n)
        if value is None or value in (0, 0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFE):
            return value, None
        try:
            info = self.memory.handle(value)
        except Exception as exc:  # a hostile handle table must not stop the event
            self.related.append({"object": "handle", "handle": f"{value:#x}", "detail": f"{role}: unreadable ({exc})"})
            return value, None
        entry: dict[str, Any] = {"object": info.type if info else "handle", "handle": f"{value:#x}"}
        if info is not None and info.object_address is not None:
            entry["address"] = f"{info.object_address:#x}"
        where = self.args.sources.get(n, "")
        entry["detail"] = f"{role}: argument {n} ({where})" + ("" if info else ", not in the handle table")
        if info is not None and info.name:
            entry["name"] = info.name
        self.related.append(entry)
        return value, info

    def structure(self, n: int, role: str) -> int | None:
        """Argument ``n`` as a pointer to a structure; its address goes into the evidence."""
        address = self.args.arg(n)
        if address:
            where = self.args.sources.get(n, "")
            self.related.append({"object": role, "address": f"{address:#x}", "detail": f"argument {n} ({where})"})
        return address

    def dos(self, name: str | None) -> str | None:
        return self.volumes.dos_path(name)

    def handle_path(self, info: HandleInfo | None) -> str | None:
        return self.dos(info.name) if info is not None and info.name else None

    def joined(self, root: int, name: str | None, role: str, root_arg: int) -> str | None:
        """A name relative to a RootDirectory handle, made absolute through that handle."""
        if not root or name is None:
            return self.dos(name)
        try:
            info = self.memory.handle(root)
        except Exception:
            info = None
        if info is None or not info.name:
            return None
        self.related.append({"object": info.type, "handle": f"{root:#x}", "name": info.name,
                             "detail": f"{role}: RootDirectory of argument {root_arg}"})
        return self.dos(info.name.rstrip("\\") + "\\" + name.lstrip("\\"))
