"""A process whose pages differ from a base process's: corrupted copies without copying it all.

Stack mutations touch a few pages; the images (and their parses in the shared ImageCache) stay
those of the base process. A page mapped to ``None`` is absent (a truncated or smeared stack).
"""

from __future__ import annotations

from typing import Sequence

from callstack_forensics.memory import PAGE_SIZE, MemoryMissing, Module, ProcessMemory, Region, ThreadInfo


class OverlayMemory(ProcessMemory):
    def __init__(
        self,
        base: ProcessMemory,
        pages: dict[int, bytes | None],
        threads: Sequence[ThreadInfo],
        modules: Sequence[Module] | None = None,
    ) -> None:
        self.base = base
        self.pages = pages
        self.process = base.process
        self._threads = list(threads)
        self._modules = list(modules) if modules is not None else None

    def read(self, address: int, size: int) -> bytes:
        out = bytearray()
        cur = address
        end = address + size
        while cur < end:
            page = cur & ~(PAGE_SIZE - 1)
            take = min(end, page + PAGE_SIZE) - cur
            if page in self.pages:
                data = self.pages[page]
                if data is None:
                    raise MemoryMissing(cur)
                out += data[cur - page : cur - page + take]
            else:
                out += self.base.read(cur, take)
            cur += take
        return bytes(out)

    def regions(self) -> Sequence[Region]:
        return self.base.regions()

    def modules(self) -> Sequence[Module]:
        return self._modules if self._modules is not None else self.base.modules()

    def threads(self) -> Sequence[ThreadInfo]:
        return self._threads
