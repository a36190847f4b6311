"""Per-process state shared by every thread's walk: caches, decoders, lookups.

Building this once per process (not per thread) is what keeps a walk cheap:
module parses, code pages and call-site decodes are reused by all threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .callsite import CallSite, CallSiteDecoder
from ..memory import Module, ProcessMemory, Region, RegionKind
from .modules import ImageCache, ProcessModules
from ..memory.pagecache import PageCache
from .pe import PeImage


@dataclass(slots=True)
class WalkOptions:
    """Limits a user can set. Defaults suit real stacks (Windows' own limit is 256 frames)."""

    max_frames: int = 256
    max_stack_bytes: int = 1 << 20  # how far a scan may climb, and how much stack one thread may read
    scan: bool = True
    callsite_bytes: int = 64


@dataclass
class ProcessContext:
    memory: ProcessMemory
    options: WalkOptions
    images: ImageCache
    cache: PageCache = field(init=False)
    modules: ProcessModules = field(init=False)
    decoder64: CallSiteDecoder = field(default_factory=lambda: CallSiteDecoder(64))
    decoder32: CallSiteDecoder = field(default_factory=lambda: CallSiteDecoder(32))

    def __post_init__(self) -> None:
        self.cache = PageCache(self.memory)
        self.modules = ProcessModules(self.memory, self.images)

    # ---- lookups --------------------------------------------------------

    def region(self, address: int) -> Region | None:
        return self.memory.region_at(address)

    def module(self, address: int) -> Module | None:
        return self.memory.module_at(address)

    def image_of(self, module: Module | None) -> PeImage | None:
        return None if module is None else self.modules.image(module)

    def is_code(self, address: int) -> bool:
        """Could ``address`` be executing code? Region protection first; when the source
        does not record protections, a module's executable section, or any present
        region of unknown protection (we do not exclude what we cannot judge)."""
        region = self.region(address)
        module = self.module(address)
        if region is not None and region.executable is not None:
            return region.executable
        if module is not None:
            image = self.image_of(module)
            return image.is_code(address - module.base) if image is not None else True
        if region is not None:
            return region.kind != RegionKind.UNKNOWN or self.cache.try_read(address, 1) is not None
        return False

    def call_before(self, return_address: int, bits: int = 64) -> CallSite | None:
        leading = self.cache.leading(return_address, 16)
        if len(leading) < 2:
            return None
        decoder = self.decoder64 if bits == 64 else self.decoder32
        if bits == 64:
            return decoder.decode(return_address, leading, self.cache.u64)
        return decoder.decode(return_address, leading, self.cache.u32)
