"""Where a Windows path lives inside a disk collection.

Collections keep the original paths under a root of their own: a mounted volume is the drive
itself (``Windows/System32/ntdll.dll``), KAPE keeps the drive letter as a folder
(``C/Windows/System32/ntdll.dll``), Velociraptor URL-encodes it under its accessor
(``uploads/auto/C%3A/Windows/...``, ``uploads/ntfs/%5C%5C.%5CC%3A/Windows/...``). Windows
paths are case-insensitive and Linux folders are not, so each path component is matched
without regard to case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_DRIVE = re.compile(r"^([A-Za-z]):\\(.*)$")
_DEVICE_PREFIXES = ("\\??\\", "\\\\?\\")


def _drive_roots(root: Path, letter: str) -> list[Path]:
    upper = letter.upper()
    return [root / upper, root / letter.lower(), root / "uploads" / "auto" / f"{upper}%3A",
            root / "uploads" / "ntfs" / f"%5C%5C.%5C{upper}%3A", root]


@dataclass
class FileCollection:
    """One collection folder; :meth:`locate` maps ``C:\\Windows\\...`` to the file in it."""

    root: Path
    _listings: dict[Path, dict[str, str]] = field(default_factory=dict, repr=False)

    def locate(self, windows_path: str) -> Path | None:
        """The collected file for a DOS path (``C:\\...``), or None when the collection lacks it."""
        return self._locate(windows_path, folder=False)

    def locate_folder(self, windows_path: str) -> Path | None:
        """The collected folder for a DOS path, or None."""
        return self._locate(windows_path, folder=True)

    def _locate(self, windows_path: str, folder: bool) -> Path | None:
        text = windows_path
        for prefix in _DEVICE_PREFIXES:
            if text.startswith(prefix):
                text = text[len(prefix):]
        found = _DRIVE.match(text)
        if not found:
            return None
        parts = [p for p in found.group(2).split("\\") if p]
        if not parts or any(p in (".", "..") for p in parts):
            return None
        for base in _drive_roots(self.root, found.group(1)):
            path = self._walk(base, parts)
            if path is not None and (path.is_dir() if folder else path.is_file()):
                return path
        return None

    def _walk(self, base: Path, parts: list[str]) -> Path | None:
        current = base
        for part in parts:
            listing = self._listing(current)
            name = listing.get(part.lower())
            if name is None:
                return None
            current = current / name
        return current

    def _listing(self, folder: Path) -> dict[str, str]:
        if folder not in self._listings:
            try:
                names = [entry.name for entry in folder.iterdir()] if folder.is_dir() else []
            except OSError:
                names = []
            self._listings[folder] = {name.lower(): name for name in sorted(names)}
        return self._listings[folder]
