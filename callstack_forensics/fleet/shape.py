"""A stack's shape: what stays the same when the same code waits in the same place on another host.

Prevalence compares stacks across machines, so a shape keeps only what two hosts running the
same software share: the module's file name (not its folder or load address) and the function,
with the offset into the function dropped where the function is known (a patch level moves it,
the behaviour is the same). A frame without a function keeps its module offset (``foo.dll+0x1a2b``:
the same build puts it at the same place); an unbacked frame is just ``Unbacked`` (its address
is wherever the allocator put it).
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterable

from ..engine.stack import UNBACKED, UNKNOWN, Frame

SEPARATOR = " > "  # innermost first, as the frames are listed
_SYMBOL = re.compile(r"^(?P<module>.*?)!(?P<function>[^!]*?)(\+0x[0-9a-fA-F]+)?$")
_OFFSET = re.compile(r"^(?P<module>.*?)(?P<offset>\+0x[0-9a-fA-F]+)?$")


def frame_label(frame: Frame) -> str:
    """``ntdll.dll!NtWaitForSingleObject``, ``foo.dll+0x1a2b``, ``Unbacked`` or ``Unknown``."""
    return label_of(frame.symbol_info, frame.module.name if frame.module is not None else None)


def label_of(symbol_info: str, module_name: str | None) -> str:
    """The normalised label of one frame's ``symbol_info`` (module file name lower-cased)."""
    if symbol_info.startswith(UNBACKED):
        return UNBACKED
    found = _SYMBOL.match(symbol_info)
    if found and found.group("function"):
        return f"{_module(found.group('module'), module_name)}!{found.group('function')}"
    plain = _OFFSET.match(symbol_info.split("!", 1)[0])
    module = _module(plain.group("module") if plain else symbol_info, module_name)
    if module == UNKNOWN.lower() or not module:
        return UNKNOWN
    return module + (plain.group("offset").lower() if plain and plain.group("offset") else "")


def _module(text: str, module_name: str | None) -> str:
    if module_name:
        return module_name.lower()
    return text.replace("/", "\\").rsplit("\\", 1)[-1].lower()


def stack_shape(labels: Iterable[str]) -> str:
    """The frames' labels joined innermost first; an empty stack is the empty string."""
    return SEPARATOR.join(labels)


def stack_id(shape: str) -> str:
    """A short stable name for a shape (16 hex digits of its SHA-256), for joins and for people."""
    return hashlib.sha256(shape.encode("utf-8")).hexdigest()[:16]
