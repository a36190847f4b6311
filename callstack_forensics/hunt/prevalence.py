"""How common each stack shape is in one image: the article's "is this normal here?".

A shape is the sequence of frames a stack runs through, each as module and function where the
function is known (``ntdll.dll!NtWaitForSingleObject``), offsets dropped: two threads waiting
in the same code path share a shape whatever their return offsets or stack addresses. Frames
outside modules are ``Unbacked``/``Unknown`` (their addresses differ per process and say
nothing of the path). A finding on a stack whose shape no other thread of the image has is
worth more than one on a shape a hundred threads share.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

from ..engine.stack import Frame, ThreadStack


def frame_shape(frame: Frame) -> str:
    """``ntdll.dll!NtWaitForSingleObject``, ``kernelbase.dll+0x1a2b``, ``Unbacked``, ``Unknown``."""
    if frame.module is None:
        return "Unbacked" if frame.unbacked else "Unknown"
    name = frame.module.name.lower()
    if "!" in frame.symbol_info:
        return f"{name}!{frame.symbol_info.rsplit('!', 1)[1].split('+', 1)[0]}"
    return f"{name}+{frame.address - frame.module.base:#x}"


def stack_shape(frames: Iterable[Frame]) -> tuple[str, ...]:
    return tuple(frame_shape(f) for f in frames)


@dataclass(frozen=True, slots=True)
class Prevalence:
    threads: int
    processes: int

    @property
    def unique(self) -> bool:
        return self.threads == 1

    def to_ecs(self) -> dict[str, object]:
        return {"threads": self.threads, "processes": self.processes, "unique": self.unique}


class ShapeCounts:
    """Threads and processes per stack shape, over every walked stack of an image."""

    def __init__(self, stacks: Iterable[ThreadStack]) -> None:
        threads: dict[tuple[str, ...], int] = defaultdict(int)
        pids: dict[tuple[str, ...], set[int]] = defaultdict(set)
        # each stack's shape as counted, for of() to find again (the stack kept beside it: an id
        # is only its own while the object lives)
        self._shapes: dict[int, tuple[ThreadStack, tuple[str, ...]]] = {}
        for stack in stacks:
            if not stack.frames:
                continue
            shape = stack_shape(stack.frames)
            self._shapes[id(stack)] = (stack, shape)
            threads[shape] += 1
            pids[shape].add(stack.pid)
        self._threads = dict(threads)
        self._pids = {k: len(v) for k, v in pids.items()}

    def of(self, stack: ThreadStack) -> Prevalence | None:
        if not stack.frames:
            return None
        counted = self._shapes.get(id(stack))
        shape = counted[1] if counted is not None and counted[0] is stack else stack_shape(stack.frames)
        return Prevalence(self._threads.get(shape, 0), self._pids.get(shape, 0))
