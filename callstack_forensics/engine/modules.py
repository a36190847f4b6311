"""Parsed modules: each distinct PE parsed once per image, shared by every process.

System DLLs are mapped at one base in every process, so an image with 200
processes would otherwise parse ``ntdll.dll`` 200 times. The cache key is the
module's path, size and PE timestamp; RVAs make the parse independent of the
base a module happens to have in a given process.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..memory import MemoryMissing, Module, ProcessMemory
from ..memory.pagecache import PageCache
from .pe import ImageError, PeImage, parse_image


@dataclass(slots=True)
class ImageCache:
    """Parsed images keyed by (path, size, timestamp); failures are cached too."""

    images: dict[tuple[str, int, int], PeImage | str] = field(default_factory=dict)
    parses: int = 0

    def get(self, memory: ProcessMemory, module: Module) -> PeImage | str:
        """The parsed image, or a string saying why it could not be parsed."""
        cache = PageCache(memory, max_pages=512)
        timestamp = module.timestamp
        if timestamp is None:
            timestamp = _header_timestamp(cache, module.base)
        key = (module.path.lower(), module.size, timestamp if timestamp is not None else -1)
        found = self.images.get(key)
        if found is not None:
            return found
        self.parses += 1
        try:
            image: PeImage | str = parse_image(lambda rva, n: cache.read(module.base + rva, n))
        except ImageError as exc:
            image = str(exc)
        except (MemoryMissing, ValueError, struct.error) as exc:
            image = f"image unreadable: {exc}"
        self.images[key] = image
        return image


def _header_timestamp(cache: PageCache, base: int) -> int | None:
    e_lfanew = cache.u32(base + 0x3C)
    if e_lfanew is None or e_lfanew > 0x1000:
        return None
    return cache.u32(base + e_lfanew + 8)


@dataclass(slots=True)
class ProcessModules:
    """A process's modules with their parsed images, looked up by address."""

    memory: ProcessMemory
    cache: ImageCache
    _parsed: dict[int, PeImage | str] = field(default_factory=dict)

    def module_at(self, address: int) -> Module | None:
        return self.memory.module_at(address)

    def image(self, module: Module) -> PeImage | None:
        found = self._parsed.get(module.base)
        if found is None:
            found = self.cache.get(self.memory, module)
            self._parsed[module.base] = found
        return found if isinstance(found, PeImage) else None

    def image_problem(self, module: Module) -> str | None:
        found = self._parsed.get(module.base)
        return found if isinstance(found, str) else None
