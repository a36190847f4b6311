"""Turn a bare address into a :class:`Frame` with Elastic's per-frame fields."""

from __future__ import annotations

from .context import ProcessContext
from ..memory import UNKNOWN_PROTECTION, RegionKind
from .stack import FoundBy, Frame, ModuleRef, Trust
from .symbols import symbolize


def make_frame(
    ctx: ProcessContext,
    index: int,
    address: int,
    method: FoundBy,
    is_return_address: bool,
    stack_pointer: int | None = None,
    bits: int = 64,
    trust: Trust = Trust.HIGH,
) -> Frame:
    """Describe ``address``: module, region, protection, symbol and call-site bytes.

    For a return address the call before it is decoded (``call_verified``); frame 0
    is the thread's own instruction pointer, so it has no call to verify.

    All of that depends on the address alone (the process's memory does not change under the
    analysis), and the same return addresses come back in thread after thread (every worker of
    a thread pool waits in the same frames), so it is worked out once per process and address:
    each frame still gets its own :class:`Frame`, which the walker goes on to amend.
    """
    key = (address, is_return_address, bits)
    known = ctx.frame_descriptions.get(key)
    if known is None:
        known = ctx.frame_descriptions[key] = _describe(ctx, address, is_return_address, bits)
    module = known.module
    return Frame(
        index=index, address=address, method=method, symbol_info=known.symbol_info,
        module=None if module is None else ModuleRef(module.name, module.path, module.base, module.linked),
        region_kind=known.region_kind, protection=known.protection,
        allocation_private_bytes=known.allocation_private_bytes, call_verified=known.call_verified,
        trust=trust, call_target=known.call_target, call_instruction=known.call_instruction,
        callsite_leading_bytes=known.callsite_leading_bytes,
        callsite_trailing_bytes=known.callsite_trailing_bytes, stack_pointer=stack_pointer,
        is_32bit=bits == 32, note=known.note,
    )


def _describe(ctx: ProcessContext, address: int, is_return_address: bool, bits: int) -> Frame:
    """Every field of a frame at ``address`` that depends on the address alone."""
    module = ctx.module(address)
    region = ctx.region(address)
    image = ctx.image_of(module)
    lookup = address - 1 if is_return_address else address
    frame = Frame(
        index=0,
        address=address,
        method=FoundBy.UNWOUND,
        symbol_info=symbolize(address, lookup, module, image, region),
        is_32bit=bits == 32,
    )
    if module is not None:
        frame.module = ModuleRef(module.name, module.path, module.base, module.linked)
    if region is not None:
        frame.region_kind = region.kind.value
        frame.protection = region.protection
        frame.allocation_private_bytes = region.private_executable_bytes
    elif module is not None:
        frame.region_kind = RegionKind.IMAGE.value
        frame.protection = UNKNOWN_PROTECTION
    size = ctx.options.callsite_bytes
    frame.callsite_leading_bytes = ctx.cache.leading(address, size).hex()
    frame.callsite_trailing_bytes = ctx.cache.trailing(address, size).hex()
    if is_return_address:
        check = ctx.call_check(address, bits)
        frame.call_verified = check.verified
        if check.site is not None:
            frame.call_target = check.site.target
            frame.call_instruction = check.site.text
        elif check.verified is None:
            # Too few bytes before the return address are in the source (a normal minidump's
            # private memory, a paged-out page) to show a call or rule one out: unknown, not
            # false; a "return address not preceded by a call" rule must not fire on memory it
            # never saw.
            held = len(frame.callsite_leading_bytes) // 2
            frame.note = ("call site not in the source: call unverified" if not held else
                          f"only {held} bytes of the call site in the source: call unverified")
    if module is not None and image is None:
        problem = ctx.modules.image_problem(module)
        if problem:
            frame.note = f"module not parsed: {problem}"
    return frame
