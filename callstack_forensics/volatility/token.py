"""The integrity level of a ``_TOKEN``: the group the kernel marks with ``SE_GROUP_INTEGRITY``.

``_TOKEN.IntegrityLevelIndex`` indexes ``UserAndGroups`` (an array of ``_SID_AND_ATTRIBUTES``);
the entry it names must carry ``SE_GROUP_INTEGRITY`` and a mandatory-label SID, else the groups
are searched for the one that does. Read as raw bytes at the symbol table's offsets; anything
unreadable gives None, never a guess.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from volatility3.framework import exceptions

from ..memory.sid import MAX_SUB_AUTHORITIES, SE_GROUP_INTEGRITY, format_sid

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


@dataclass(frozen=True, slots=True)
class SidsLayout:
    """Where a ``_TOKEN``'s groups and each ``_SID``'s parts lie, from the symbol table: what
    :func:`user_sid` reads instead of Volatility's objects (``TOKEN.get_sids`` reads a token's
    first SID through a dozen objects, ~1 ms a process)."""

    count: int  # _TOKEN.UserAndGroupCount (ULONG)
    groups: int  # _TOKEN.UserAndGroups (pointer)
    entry_size: int  # _SID_AND_ATTRIBUTES
    sid: int  # _SID_AND_ATTRIBUTES.Sid (pointer)
    revision: int
    sub_count: int
    authority: int  # IdentifierAuthority.Value, six bytes
    sub_authority: int
    mask: int  # the layer's address mask, as a pointer's dereference applies it

    @classmethod
    def resolve(cls, context: Any, table: str, mask: int) -> "SidsLayout | None":
        """None when a member is missing or not of the size read here (the caller then asks
        Volatility's objects)."""
        try:
            token = context.symbol_space.get_type(table + "!_TOKEN")
            entry = context.symbol_space.get_type(table + "!_SID_AND_ATTRIBUTES")
            sid = context.symbol_space.get_type(table + "!_SID")
            authority = context.symbol_space.get_type(table + "!_SID_IDENTIFIER_AUTHORITY")
            sizes = {(token, "UserAndGroupCount"): 4, (token, "UserAndGroups"): 8, (entry, "Sid"): 8,
                     (sid, "Revision"): 1, (sid, "SubAuthorityCount"): 1, (authority, "Value"): 6}
            for (owner, member), size in sizes.items():
                if owner.vol.members[member][1].size != size:
                    return None
            authority = sid.relative_child_offset("IdentifierAuthority") + authority.relative_child_offset("Value")
            return cls(token.relative_child_offset("UserAndGroupCount"), token.relative_child_offset("UserAndGroups"),
                       entry.size, entry.relative_child_offset("Sid"), sid.relative_child_offset("Revision"),
                       sid.relative_child_offset("SubAuthorityCount"), authority,
                       sid.relative_child_offset("SubAuthority"), mask)
        except (exceptions.SymbolError, AttributeError, KeyError, TypeError, ValueError):
            return None


def user_sid(layer: Any, token: int, layout: SidsLayout) -> str | None:
    """The first SID of the token at ``token`` exactly as ``next(TOKEN.get_sids())`` gives it, read
    as raw bytes: no SIDs past 0xFFFE groups; a group whose SID does not read is passed over; a SID
    that is not one by ``IsValidSid``'s rule ends the list; the authority is the last byte of the
    six (Volatility's choice) and the revision is printed whole. An unreadable token is an
    InvalidAddressException, as Volatility's own read raises it."""
    count = struct.unpack("<I", layer.read(token + layout.count, 4))[0]
    if count >= 0xFFFF:
        return None
    array = struct.unpack("<Q", layer.read(token + layout.groups, 8))[0] & layout.mask
    for index in range(count):
        try:
            pointer = struct.unpack("<Q", layer.read(array + index * layout.entry_size + layout.sid, 8))[0] & layout.mask
            revision = layer.read(pointer + layout.revision, 1)[0]
            if revision & 0xF != 1:  # the count is read only after the revision passed, as there
                return None
            subs = layer.read(pointer + layout.sub_count, 1)[0]
            if subs > MAX_SUB_AUTHORITIES:
                return None
            authority = layer.read(pointer + layout.authority, 6)[5]
            values = struct.unpack(f"<{subs}I", layer.read(pointer + layout.sub_authority, 4 * subs)) if subs else ()
        except exceptions.InvalidAddressException:
            continue
        return "S-" + "-".join(str(i) for i in (revision, authority, *values))
    return None
