"""A copy of the checkout as a clone holds it, for tests that build or run from a clean tree.

Tracked files plus new files that are not ignored: never build output lying around (``out/``,
``tests/wine/build``, ``.venv``), which a clone would not have either.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def source_copy(target: Path) -> Path:
    """Copy the files a clone of the checkout holds into ``target``; return ``target``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target
