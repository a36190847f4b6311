"""``callstack-forensics plugins-path``: the folder to give Volatility's ``-p`` for the callstacks plugins.

An installed copy keeps its plugin folder inside the package, a path nobody should have to
guess; ``vol -p "$(callstack-forensics plugins-path)" -f mem.raw callstacks.detect`` works for
a checkout and for a pip/pipx install alike.
"""

from __future__ import annotations

import typer

from ..resources import plugins_path

EXAMPLE = """Examples:

  vol -p "$(callstack-forensics plugins-path)" -f mem.raw callstacks.detect

  vol -p "$(callstack-forensics plugins-path)" -f mem.raw callstacks.stacks --pid 6092"""


def register(app: typer.Typer) -> None:
    @app.command("plugins-path", help=f"Print the folder of the Volatility 3 plugins (callstacks.stacks, .events, .detect) for vol -p.\n\n{EXAMPLE}")
    def plugins_path_cmd() -> None:
        folder = plugins_path()
        if not (folder / "callstacks").is_dir():
            typer.echo(f"error: the plugin folder {folder} is missing; reinstall callstack-forensics", err=True)
            raise typer.Exit(2)
        typer.echo(str(folder))
