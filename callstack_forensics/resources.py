"""Where the files shipped beside the code are: the rules, the YARA rules, the Volatility plugins,
and the forge's sample modules and base systems.

In a source checkout they sit in the repository (``rules/``, ``plugins/``, ``samples/``), where
people edit them and ``vol -p plugins`` finds them. A wheel carries them inside the package
(``pyproject.toml`` maps ``rules/`` to ``callstack_forensics/rules/shipped``, ``plugins/`` to
``callstack_forensics/volatility/plugins``, ``samples/modules`` and ``samples/scenarios/base``
into ``callstack_forensics/forge/``), since an installed copy has no repository around it: an
installed ``callstack-forensics forge`` found no module catalog. The installed place wins when it
exists; nothing here imports Volatility.
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


def sample_modules_dir() -> Path:
    """The forge's modules: ``catalog.json`` and the PE files it names (``samples/modules``)."""
    return _shipped("forge/shipped_modules", "samples/modules")


def base_systems_dir() -> Path:
    """The base systems every scenario sits on (``samples/scenarios/base``)."""
    return _shipped("forge/shipped_bases", "samples/scenarios/base")
