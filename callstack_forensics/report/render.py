"""Render an :class:`Analysis` as one self-contained HTML file (the case report).

Every string in an analysis comes from the image and must be treated as hostile: a process
can name itself ``<script>``, a command line or a module path can hold any markup. So the
template is rendered with autoescaping on for everything (``select_autoescape`` with
``default=True``), undefined names fail the render (``StrictUndefined``: a typo must not print
an empty cell in a case file), and no value is ever marked safe except the report's own
stylesheet and script, which are package files.

As a second line, the page carries a Content-Security-Policy that allows only the report's
own inline script (by its SHA-256) and fetches nothing: an escaping mistake in a future
template change still cannot run injected script, and the file works offline by construction.
"""

from __future__ import annotations

import base64
import hashlib

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from ..analysis import Analysis
from .view import build_view, iso

TEMPLATE = "case.html.j2"
STYLE = "style.css.j2"
SCRIPT = "filter.js.j2"


def environment() -> Environment:
    """A fresh environment: autoescape on every template, whatever its name; strict undefined."""
    env = Environment(
        loader=PackageLoader("callstack_forensics.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "htm", "j2"), default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["iso"] = iso
    env.filters["size"] = human_size
    return env


def render_report(analysis: Analysis) -> str:
    """The case report of ``analysis`` as an HTML document (one string, nothing external)."""
    env = environment()
    style = env.get_template(STYLE).render()
    script = env.get_template(SCRIPT).render()
    if "</" in script or "</" in style:
        raise ValueError("the report's own script or style must not contain '</' (it would end its element)")
    return env.get_template(TEMPLATE).render(
        report=build_view(analysis),
        style=Markup(style),
        script=Markup(script),
        csp=content_security_policy(script),
    )


def content_security_policy(script: str) -> str:
    """Nothing may be fetched; only the report's own script runs; inline styles are allowed."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src data:; "
            "base-uri 'none'; form-action 'none'")


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit} ({size:,} bytes)"
        value /= 1024
    return f"{size} bytes"
