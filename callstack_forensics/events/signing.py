"""``code_signature`` from the signing level Code Integrity cached in the image.

A memory image holds no certificates, but the kernel records Code Integrity's verdict:
``_EPROCESS.SignatureLevel`` for a process's image and ``_LDR_DATA_TABLE_ENTRY.SigningLevel``
for a module (SE_SIGNING_LEVEL_*). Zero means "not checked", and then nothing is said;
levels that require a signature chaining to a root Windows trusts read ``trusted``.
"""

from __future__ import annotations

from typing import Any

LEVEL_NAMES = {
    0: "Unchecked", 1: "Unsigned", 2: "Enterprise", 3: "Developer", 4: "Authenticode", 5: "Custom2",
    6: "Store", 7: "Antimalware", 8: "Microsoft", 9: "Custom4", 10: "Custom5", 11: "DynamicCodegen",
    12: "Windows", 13: "Custom7", 14: "WindowsTcb", 15: "Custom6",
}
TRUSTED_LEVELS = frozenset({4, 6, 7, 8, 12, 14})
UNSIGNED = 1


def code_signature(level: int | None) -> dict[str, Any] | None:
    """Elastic's ``code_signature`` object for a signing level, or None when it says nothing."""
    if not level:
        return None
    name = LEVEL_NAMES.get(level & 0xF, f"{level:#x}")
    if level == UNSIGNED:
        return {"exists": False, "Ext": {"signing_level": name}}
    out: dict[str, Any] = {"exists": True, "Ext": {"signing_level": name}}
    if level & 0xF in TRUSTED_LEVELS:
        out.update(trusted=True, status="trusted")
    return out
