"""Where the files shipped beside the code are: the rules, the YARA rules and the Volatility plugins.

In a source checkout they sit at the repository root (``rules/``, ``plugins/``), where people
edit them and ``vol -p plugins`` finds them. A wheel carries them inside the package
(``pyproject.toml`` maps ``rules/`` to ``callstack_forensics/rules/shipped`` and ``plugins/``
to ``callstack_forensics/volatility/plugins``), since an installed copy has no repository
around it. The installed place wins when it exists; nothing here imports Volatility.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent


def _shipped(installed: str, checkout: str) -> Path:
    inside = PACKAGE / installed
    return inside if inside.is_dir() else CHECKOUT / checkout


def shipped_rules_dir() -> Path:
    """The shipped detection rules (Elastic endpoint TOML)."""
    return _shipped("rules/shipped", "rules")


def shipped_yara_dir() -> Path:
    """The shipped YARA rules, scanned over unbacked executable memory."""
    return shipped_rules_dir() / "yara"


def plugins_path() -> Path:
    """The folder to give ``vol -p``: it holds ``callstacks/`` (stacks, events, detect)."""
    return _shipped("volatility/plugins", "plugins")
