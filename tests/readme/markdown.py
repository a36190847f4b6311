"""The fenced code blocks of a Markdown file, each with the line it starts on."""

from __future__ import annotations

import re
from dataclasses import dataclass

FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)")


@dataclass(frozen=True)
class Block:
    """One fenced block: its info string (``""``, ``python``, ``toml``...) and its lines."""

    first_line: int  # the file's line number of the block's first line inside the fence
    info: str
    lines: tuple[str, ...]


def fenced_blocks(text: str) -> list[Block]:
    """Every fenced block of ``text``, in order; an unclosed fence runs to the end."""
    blocks: list[Block] = []
    fence = info = None
    start, lines = 0, []
    for number, line in enumerate(text.splitlines(), 1):
        if fence is None:
            opened = FENCE.match(line)
            if opened:
                fence, info, start, lines = opened.group(1), opened.group(2), number + 1, []
        elif line.strip() == fence:
            blocks.append(Block(start, info, tuple(lines)))
            fence = None
        else:
            lines.append(line)
    if fence is not None:
        blocks.append(Block(start, info, tuple(lines)))
    return blocks
