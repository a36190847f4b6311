"""Reads that fit in one page, served in two steps instead of Volatility's generic path.

Why: nearly every read the analysis makes is small and inside one page (a VAD node, an ETHREAD's
members, a trap frame, a stack page), and Volatility's ``read`` goes through its ``mapping``
generator, a chunk loop and checks meant for reads that span pages: several times the cost of
the translation itself, paid tens of thousands of times per image. Here such a read is the same
two steps that path ends in: the layer's own ``_translate`` (its cached page-table walk) and one
read of the layer below, after the same validity check. Anything else (a read across a page, a
padded or empty read, any failure on the way) goes to the layer's own ``read``, so the bytes,
and every exception with its address, stay exactly Volatility's.
"""

from __future__ import annotations

from typing import Any


class FastReads:
    """A Volatility translation layer whose one-page reads take the short path; everything else
    (attributes, other methods) is the layer's own."""

    __slots__ = ("layer", "_translate", "_layers")

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self._translate = getattr(layer, "_translate", None)
        context = getattr(layer, "context", None)
        self._layers = getattr(context, "layers", None)
        if self._layers is None:
            self._translate = None

    def read(self, offset: int, length: int, pad: bool = False) -> bytes:
        if self._translate is not None and not pad and length > 0:
            data = self._one_page(offset, length)
            if data is not None:
                return data
        return self.layer.read(offset, length, pad)

    def _one_page(self, offset: int, length: int) -> bytes | None:
        try:
            mapped, page_size, name = self._translate(offset)
            if offset % page_size + length > page_size:
                return None
            below = self._layers[name]
            if not below.is_valid(mapped, length):
                return None
            data = below.read(mapped, length)
        except Exception:  # the layer's own read says what went wrong, in its own words
            return None
        return data if len(data) == length else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.layer, name)
