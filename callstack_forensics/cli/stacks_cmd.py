"""``callstack-forensics stacks``: each thread's frames as a rich table or JSON."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("stacks")
    def stacks(source: str = typer.Argument(..., help="A minidump (.dmp) or memory image.")) -> None:
        """Print every thread's rebuilt call stack."""
        raise typer.Exit(2)
