"""A security identifier (SID) from its binary form, as Windows prints it (``S-1-16-8192``).

Token groups are read as raw bytes by the sources (a memory image's ``_TOKEN``); the text form
is what ECS carries (``user.id``) and what the integrity level is named from.
"""

from __future__ import annotations

import struct

SID_HEADER = 8  # Revision, SubAuthorityCount, IdentifierAuthority[6]
MAX_SUB_AUTHORITIES = 15
SE_GROUP_INTEGRITY = 0x20  # the token group that is the integrity level


def sid_size(data: bytes) -> int | None:
    """The SID's length in bytes from its header, or None when the header is no SID's."""
    if len(data) < 2 or data[0] != 1 or data[1] > MAX_SUB_AUTHORITIES:
        return None
    return SID_HEADER + 4 * data[1]


def format_sid(data: bytes) -> str | None:
    """``S-R-A-S1-S2...`` for a binary SID (as ``IsValidSid`` checks it), None when it is not one."""
    size = sid_size(data)
    if size is None or len(data) < size:
        return None
    authority = int.from_bytes(data[2:8], "big")
    subs = struct.unpack_from(f"<{data[1]}I", data, SID_HEADER)
    return "-".join(["S", str(data[0]), str(authority), *map(str, subs)])
