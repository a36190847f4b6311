"""Which rule folders a run reads: one meaning of ``--rules`` for every command.

``--rules DIR`` always *adds* a folder to the shipped rules (``analyze``, ``report``,
``detect`` and the Volatility plugin alike): a responder pointing at Elastic's rules keeps the
memory-native detections that only this tool has. ``--no-shipped-rules`` leaves the shipped
ones out, for a run over exactly the folders given (a fixture checked against its own rule).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable


def rule_folders(shipped: Path, extra: Iterable[Path], with_shipped: bool = True) -> list[Path]:
    """The shipped folder (unless left out) then every extra folder, each once, in the order given."""
    out: list[Path] = [shipped] if with_shipped else []
    for folder in extra:
        path = Path(folder)
        if path not in out:
            out.append(path)
    return out
