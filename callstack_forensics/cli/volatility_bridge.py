"""The CLI's way to Volatility: load ``plugins/callstacks/session.py`` only when an image is opened.

The plugins folder is a Volatility plugin package (``vol -p plugins``); its modules import
each other as ``volatility3.plugins.callstacks.*``, so it is imported under that name,
exactly as ``vol`` does, and a minidump-only run never imports Volatility at all.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from types import ModuleType


def plugins_dir() -> Path:
    """The repository's ``plugins/`` folder (next to the package in a source checkout)."""
    return Path(__file__).resolve().parents[2] / "plugins"


def session_module() -> ModuleType:
    """``volatility3.plugins.callstacks.session``, with our plugins folder on Volatility's plugin path."""
    import volatility3.plugins

    # Volatility logs its automagic's dead ends (an offline symbol download...) as warnings; the
    # CLI turns a failed setup into one actionable error, so only Volatility's errors are shown.
    logging.getLogger("volatility3").setLevel(logging.ERROR)
    folder = str(plugins_dir())
    if folder not in volatility3.plugins.__path__:
        volatility3.plugins.__path__ = [folder] + list(volatility3.plugins.__path__)
    return importlib.import_module("volatility3.plugins.callstacks.session")
