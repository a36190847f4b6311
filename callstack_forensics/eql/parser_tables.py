"""The EQL parser's LALR tables, built once per grammar and kept in the user's cache folder.

Why: building the tables from ``eql.lark`` takes ~75 ms, on every run that loads a rule (each
``vol ... callstacks.detect``, each CLI command, each fleet client); loading them takes ~4 ms.
The file's name carries everything the tables depend on (the grammar, the parser options, lark's
version, Python's), so a changed grammar or an upgraded lark builds and keeps new ones. A file
that cannot be read or loaded is built again and replaced; it is written under a temporary name
and renamed, so parallel runs (a fleet's workers) never read one half written. The folder is
used only while it is private (``user_cache``): a pickle in it would run code when loaded.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import lark
from lark import Lark

from ..user_cache import is_private, user_cache_dir


def load_parser(grammar: str, options: dict[str, Any], folder: Path | None = None) -> Lark:
    """The parser for ``grammar`` built with ``options``: from the cache when it holds it."""
    folder = folder if folder is not None else user_cache_dir()
    if folder is None:
        return Lark(grammar, **options)
    path = folder / f"eql-parser-{_key(grammar, options)}.lark"
    parser = _load(path)
    if parser is None:
        parser = Lark(grammar, **options)
        _save(parser, path)
    return parser


def _key(grammar: str, options: dict[str, Any]) -> str:
    identity = "\0".join([grammar, repr(sorted(options.items())), lark.__version__,
                          "%d.%d" % sys.version_info[:2]])
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]


def _load(path: Path) -> Lark | None:
    if not is_private(path):  # absent, or a file this user does not alone control
        return None
    try:
        with open(path, "rb") as handle:
            return Lark.load(handle)
    except Exception:  # truncated, from another lark, anything: build the tables again
        return None


def _save(parser: Lark, path: Path) -> None:
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
            parser.save(handle)
        os.replace(temporary, path)
    except OSError:  # a full or read-only disk: this run built the tables, the next will too
        try:
            temporary.unlink()
        except OSError:
            pass
