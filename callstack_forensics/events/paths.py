"""Kernel names to the names Elastic's events use: ``C:\\...`` paths and ``HKLM\\...`` keys.

The kernel knows a file as ``\\Device\\HarddiskVolume3\\Users\\x.exe``; Elastic writes
``C:\\Users\\x.exe``. Which drive letter a volume has is itself evidence in the image: a
process's image file object (``\\Device\\HarddiskVolume3\\Windows\\explorer.exe``) and its
PEB's image path (``C:\\Windows\\explorer.exe``) name the same file, so the device is
``C:``. :class:`VolumeMap` learns these pairs; a device it has no pair for stays a device
path rather than being given a guessed letter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

_DOS_PREFIXES = ("\\??\\", "\\GLOBAL??\\", "\\\\?\\", "\\\\.\\")


@dataclass(slots=True)
class VolumeMap:
    """Device name (lower case, ``\\device\\harddiskvolume3``) to drive (``C:``)."""

    drives: dict[str, str] = field(default_factory=dict)

    def learn(self, device_path: str | None, dos_path: str | None) -> None:
        """Record the drive of ``device_path``'s device when both name the same file."""
        if not device_path or not dos_path or len(dos_path) < 3 or dos_path[1:3] != ":\\":
            return
        rest = dos_path[2:]
        if not device_path.lower().endswith(rest.lower()):
            return
        device = device_path[: len(device_path) - len(rest)]
        if device.lower().startswith("\\device\\") and device.count("\\") == 2:
            self.drives.setdefault(device.lower(), dos_path[:2].upper())

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str | None, str | None]]) -> "VolumeMap":
        out = cls()
        for device_path, dos_path in pairs:
            out.learn(device_path, dos_path)
        return out

    def dos_path(self, name: str | None) -> str | None:
        """``\\??\\C:\\x``, ``\\Device\\HarddiskVolume3\\x`` -> ``C:\\x``; unknown devices stay as they are."""
        if not name:
            return name
        for prefix in _DOS_PREFIXES:
            if name.startswith(prefix):
                rest = name[len(prefix):]
                if rest[:4].upper() == "UNC\\":
                    return "\\\\" + rest[4:]
                return rest
        if name.lower().startswith("\\device\\"):
            parts = name.split("\\", 3)
            device = "\\".join(parts[:3]).lower()
            drive = self.drives.get(device)
            if drive is not None:
                return drive + ("\\" + parts[3] if len(parts) > 3 else "\\")
        return name


def file_fields(path: str | None) -> dict[str, str]:
    """``file.path``, ``file.name``, ``file.extension`` (lower case, no dot) of a path."""
    if not path:
        return {}
    name = path.rstrip("\\").rsplit("\\", 1)[-1]
    out = {"path": path, "name": name}
    if "." in name.strip("."):
        out["extension"] = name.rsplit(".", 1)[1].lower()
    return out


_HIVES = (
    ("\\registry\\machine\\", "HKLM"),
    ("registry\\machine\\", "HKLM"),
    ("machine\\", "HKLM"),
    ("\\registry\\user\\", "HKEY_USERS"),
    ("registry\\user\\", "HKEY_USERS"),
    ("user\\", "HKEY_USERS"),
)


def registry_key(kernel_name: str | None) -> tuple[str, str] | None:
    """``\\REGISTRY\\MACHINE\\SOFTWARE\\x`` (or Volatility's ``MACHINE\\SOFTWARE\\x``) ->
    ``("HKLM", "SOFTWARE\\x")``; None for names outside the two hives Elastic names."""
    if not kernel_name:
        return None
    lowered = kernel_name.lower() + "\\"
    for prefix, hive in _HIVES:
        if lowered.startswith(prefix):
            return hive, kernel_name[len(prefix):].rstrip("\\")
    return None
