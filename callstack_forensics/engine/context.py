"""Per-process state shared by every thread's walk: caches, decoders, lookups.

Building this once per process (not per thread) is what keeps a walk cheap:
module parses, code pages and call-site decodes are reused by all threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .callsite import MAX_CALL_LENGTH, CallSite, CallSiteDecoder
from ..memory import Module, ProcessMemory, Region, RegionKind
from .modules import ImageCache, ProcessModules
from ..memory.pagecache import PageCache
from .pe import PeImage
from .stack import Trust


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
    thunk_resolvers: dict = field(default_factory=dict)  # bits -> consistency.ThunkResolver
    # what depends on an address alone, worked out once per process (decorate.make_frame, call_check)
    frame_descriptions: dict = field(default_factory=dict)  # (address, is return address, bits) -> Frame
    call_checks: dict = field(default_factory=dict)  # (return address, bits) -> CallCheck
    function_starts: dict = field(default_factory=dict)  # looked-up address -> its function's start, or None
    return_checks: dict = field(default_factory=dict)  # (value, bits) -> ReturnCheck
    first_instructions: dict = field(default_factory=dict)  # (address, bits) -> its instruction's text, or None

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

    def code_state(self, address: int) -> bool | None:
        """Could ``address`` be executing code: True, False, or None when the source cannot
        tell. Region protection first; without one, a parsed module's section decides;
        anything else is unknown (bytes being present do not make them code), or not code
        when the source's regions cover the whole address space and none holds it."""
        region = self.region(address)
        if region is not None and region.executable is not None:
            return region.executable
        module = self.module(address)
        if module is not None:
            image = self.image_of(module)
            return image.is_code(address - module.base) if image is not None else None
        if region is not None or not self.memory.regions_complete:
            return None
        return False

    def is_code(self, address: int) -> bool:
        """Known to be executable (see :meth:`code_state`)."""
        return self.code_state(address) is True

    def call_check(self, return_address: int, bits: int = 64) -> CallCheck:
        """The call that ends at ``return_address``, and whether the bytes could tell (decoded
        once per address: scans and unwinds ask about the same return addresses again and again)."""
        key = (return_address, bits)
        known = self.call_checks.get(key)
        if known is None:
            known = self.call_checks[key] = self._decode_call(return_address, bits)
        return known

    def _decode_call(self, return_address: int, bits: int) -> CallCheck:
        leading = self.cache.leading(return_address, MAX_CALL_LENGTH)
        site = None
        if len(leading) >= 2:
            decoder = self.decoder64 if bits == 64 else self.decoder32
            site = decoder.decode(return_address, leading, self.cache.u64 if bits == 64 else self.cache.u32)
        return CallCheck(site, len(leading) >= MAX_CALL_LENGTH)

    def call_before(self, return_address: int, bits: int = 64) -> CallSite | None:
        return self.call_check(return_address, bits).site

    def return_check(self, value: int, bits: int = 64) -> ReturnCheck:
        """What the source says about ``value`` as a return address (once per process and value:
        the unwinds of thread after thread ask it of the same return addresses)."""
        key = (value, bits)
        known = self.return_checks.get(key)
        if known is None:
            if value <= 0x10000:
                known = ReturnCheck(False, CallCheck(None, True))
            else:
                known = ReturnCheck(self.code_state(value), self.call_check(value, bits))
            self.return_checks[key] = known
        return known


@dataclass(frozen=True, slots=True)
class CallCheck:
    """The call before a return address: ``site`` when the bytes decode to one; ``complete``
    when enough bytes were there to rule every call form in or out."""

    site: CallSite | None
    complete: bool

    @property
    def verified(self) -> bool | None:
        """True (a call ends there), False (the bytes show none), None (bytes missing)."""
        if self.site is not None:
            return True
        return False if self.complete else None


@dataclass(frozen=True, slots=True)
class ReturnCheck:
    """Evidence for and against a value being a return address."""

    code: bool | None
    call: CallCheck

    @property
    def possible(self) -> bool:
        """Nothing the source holds rules it out: not outside code, not after a non-call."""
        return self.code is not False and self.call.verified is not False

    @property
    def proven(self) -> bool:
        """Code (or unknown memory) right after a call that the bytes show."""
        return self.code is not False and self.call.verified is True

    @property
    def located_trust(self) -> Trust:
        """Trust in a value that unwind data, an epilog or a frame chain put in a return slot:
        high when the bytes before it were there to check (whatever they showed), medium when
        they are not in the source."""
        return Trust.MEDIUM if self.call.verified is None else Trust.HIGH
