"""The user's own cache folder, for what is costly to build and the same on every run.

``$XDG_CACHE_HOME/callstack-forensics`` (``~/.cache/callstack-forensics`` by default), made
private (0700) when it is created. Anything kept there may be a pickle, which runs code when it
is loaded, so the folder is used only while it is private: owned by this user and writable by
no one else. Anything else (no home, a read-only disk, a folder someone else could write to)
means no cache, never an error: the cache only ever saves time.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FOLDER = "callstack-forensics"


def user_cache_dir() -> Path | None:
    """The private cache folder, created if need be; None when there can be none."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):  # the XDG rule: a relative value is ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(base) / FOLDER
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if is_private(folder) else None


def is_private(path: Path) -> bool:
    """Owned by this user and writable by no one else (checked without following a link)."""
    try:
        info = path.lstat()
    except OSError:
        return False
    owner = os.getuid() if hasattr(os, "getuid") else info.st_uid
    return info.st_uid == owner and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) \
        and not stat.S_ISLNK(info.st_mode)
