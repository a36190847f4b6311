"""Volatility's class-wide caches, emptied when a process moves on to its next image.

Why: several of Volatility's methods are ``functools.lru_cache``-wrapped at class level
(``Intel._translate_entry``, ``Intel._get_valid_table``, ``LinearlyMappedLayer.read``,
``EPROCESS.add_process_layer``...). Their keys hold ``self``, so after an analysis ends they keep
its layers alive, and through them its whole context: every symbol table it loaded. A process
that analyses one image and exits never notices; a fleet worker analysing image after image
carried ~530,000 objects of finished images (~190 MiB after six), which its garbage collector
walked again in every full collection. Emptying the caches between images frees them.

Nothing here imports Volatility: the caches are found among the modules already imported (a
run over minidumps alone never loads Volatility, and has nothing to empty).
"""

from __future__ import annotations

import functools
import sys
from types import ModuleType

PACKAGE = "volatility3."


def release_volatility_caches() -> int:
    """Empty every ``lru_cache`` of Volatility's imported classes and functions; returns how many.
    Only caches are emptied: a later read recomputes what it needs (for an analysis still running
    in the same process, that costs time, never a result)."""
    emptied = 0
    for cache in _volatility_caches(sys.modules.copy()):
        cache.cache_clear()
        emptied += 1
    return emptied


def _volatility_caches(modules: dict[str, ModuleType | None]) -> list[functools._lru_cache_wrapper]:
    caches: dict[int, functools._lru_cache_wrapper] = {}
    for name, module in modules.items():
        if module is None or not name.startswith(PACKAGE):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, type) and value.__module__ == name:
                _collect(vars(value).values(), caches)
            elif isinstance(value, functools._lru_cache_wrapper):
                caches[id(value)] = value
    return list(caches.values())


def _collect(members, caches: dict[int, functools._lru_cache_wrapper]) -> None:
    for member in members:
        inner = getattr(member, "__func__", member)  # classmethod / staticmethod around the cache
        if isinstance(inner, functools._lru_cache_wrapper):
            caches[id(inner)] = inner
