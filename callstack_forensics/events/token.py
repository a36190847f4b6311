"""``process.Ext.token.*`` from the process's primary token as the image holds it.

Windows marks one group of a token as its integrity level (``SE_GROUP_INTEGRITY``; the kernel
keeps its index in ``_TOKEN.IntegrityLevelIndex``): a mandatory-label SID ``S-1-16-<RID>``.
Elastic names the level from that RID. Only the RIDs Windows defines are named; any other
value, or a token without such a group, leaves the field absent.

Elevation (``elevation``, ``elevation_type``) is left out: the kernel derives it from the
logon session's linked token and the token's privileges when asked, it is not a member the
image holds, and guessing it from the integrity level would be wrong for UAC-disabled systems.
"""

from __future__ import annotations

from typing import Any

MANDATORY_LABEL = "S-1-16-"
INTEGRITY_NAMES = {
    0: "untrusted",
    4096: "low",
    8192: "medium",
    8448: "medium",  # SECURITY_MANDATORY_MEDIUM_PLUS_RID: Windows' "Medium Plus"
    12288: "high",
    16384: "system",
    20480: "protected",
}


def integrity_level_name(sid: str | None) -> str | None:
    if not sid or not sid.startswith(MANDATORY_LABEL):
        return None
    rid = sid[len(MANDATORY_LABEL):]
    return INTEGRITY_NAMES.get(int(rid)) if rid.isdigit() else None


def token_fields(integrity_sid: str | None) -> dict[str, Any]:
    """``{"integrity_level_name": ..., "integrity_level": RID}`` or nothing."""
    name = integrity_level_name(integrity_sid)
    if name is None:
        return {}
    return {"integrity_level_name": name, "integrity_level": int(integrity_sid[len(MANDATORY_LABEL):])}  # type: ignore[index]
