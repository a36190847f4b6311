"""The integrity level of a ``_TOKEN``: the group the kernel marks with ``SE_GROUP_INTEGRITY``.

``_TOKEN.IntegrityLevelIndex`` indexes ``UserAndGroups`` (an array of ``_SID_AND_ATTRIBUTES``);
the entry it names must carry ``SE_GROUP_INTEGRITY`` and a mandatory-label SID, else the groups
are searched for the one that does. Read as raw bytes at the symbol table's offsets; anything
unreadable gives None, never a guess.
"""

from __future__ import annotations

import struct
from typing import Any

from volatility3.framework import exceptions

from ..memory.sid import SE_GROUP_INTEGRITY, format_sid

MAX_GROUPS = 1024
READ_ERRORS = (exceptions.InvalidAddressException, AttributeError, ValueError, struct.error)
ENTRY_SIZE = 16  # _SID_AND_ATTRIBUTES on x64: Sid pointer, Attributes


def integrity_sid(context: Any, layer_name: str, token: Any) -> str | None:
    """The SID of the token's integrity group (``S-1-16-8192``), or None."""
    try:
        if not token.has_member("IntegrityLevelIndex"):
            return None
        count = int(token.UserAndGroupCount)
        array = int(token.UserAndGroups)
        index = int(token.IntegrityLevelIndex)
    except READ_ERRORS:
        return None
    if not array or not 0 < count <= MAX_GROUPS:
        return None
    layer = context.layers[layer_name]
    order = [index] + [i for i in range(count) if i != index] if 0 <= index < count else range(count)
    for i in order:
        sid = _integrity_entry(layer, array + i * ENTRY_SIZE)
        if sid is not None:
            return sid
    return None


def _integrity_entry(layer: Any, address: int) -> str | None:
    try:
        pointer, attributes = struct.unpack("<QI", layer.read(address, 12, pad=False))
        if not attributes & SE_GROUP_INTEGRITY or not pointer:
            return None
        head = layer.read(pointer, 8, pad=False)
        body = layer.read(pointer, 8 + 4 * head[1], pad=False) if head[1] <= 15 else b""
    except READ_ERRORS:
        return None
    sid = format_sid(body)
    return sid if sid is not None and sid.startswith("S-1-16-") else None
