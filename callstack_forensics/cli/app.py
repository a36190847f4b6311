"""Entry point of the ``callstack-forensics`` CLI.

Each command lives in its own module with a ``register(app)`` function, so the
commands of the stack engine, the rule engine and the forge stay independent.

Exit codes: 0 clean, 1 findings, 2 usage or input error.
"""

from __future__ import annotations

from typing import Any

import typer

from .. import __version__

from .helpstyle import plain_help
from . import analyze_cmd, events_cmd, fleet_cmd, forge_cmd, plugins_cmd, report_cmd, rules_cmd, stacks_cmd

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="callstack-forensics",
        help="Rebuild user-mode call stacks from Windows memory images and minidumps, "
        "and run call-stack detections after the fact.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # plain help: what to type, not typer's type names
    )

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
        ),
    ) -> None:
        """Keeps the app a command group even while it has a single command."""

    for module in (analyze_cmd, report_cmd, events_cmd, stacks_cmd, rules_cmd, plugins_cmd, forge_cmd, fleet_cmd):
        module.register(app)
    return app


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit(0)


def build_command() -> Any:
    """The CLI as Click runs it, with plain metavars in ``--help``."""
    return plain_help(typer.main.get_command(build_app()))


def main() -> None:
    build_command()(prog_name="callstack-forensics")


if __name__ == "__main__":
    main()
