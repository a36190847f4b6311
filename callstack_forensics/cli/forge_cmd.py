"""``callstack-forensics forge SCENARIO.toml -o OUT.raw [--isf FILE] [--ram SIZE] [--threads-scale N] [--processes-scale N] [--host-weight] [--computer-name NAME]``:
build a memory image from a scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("forge")
    def forge_command(
        scenario: Path = typer.Argument(..., help="Scenario file (samples/scenarios/*.toml)."),
        output: Path = typer.Option(..., "-o", "--output", help="Raw image to write; symbols go to its folder's symbols/."),
        isf: Optional[Path] = typer.Option(None, "--isf", help="Another real kernel ISF (.json/.json.xz) instead of the default (Windows 10 22H2, shipped)."),
        threads_scale: int = typer.Option(1, "--threads-scale", min=1,
                                          help="Give every process N times its threads (each clone its own TID and stack)."),
        processes_scale: int = typer.Option(1, "--processes-scale", min=1,
                                            help="Run N copies of every user process (each its own PID, "
                                            "address space and threads): an image of a real host's size."),
        host_weight: bool = typer.Option(False, "--host-weight", help="Give every user process the modules, VADs and "
                                         "written heap of a real host's process (tens of modules and hundreds of VADs; "
                                         "explorer more): with --processes-scale, an image of a real host's weight."),
        ram: str = typer.Option("4G", "--ram", help="Physical memory of the machine, e.g. 4G or 512M: the image's size "
                                "(written sparse: only the pages in use take disk)."),
        computer_name: Optional[str] = typer.Option(None, "--computer-name", help="COMPUTERNAME of the machine (every user "
                                                    "process's environment), instead of the scenario's [system].computer_name: "
                                                    "one scenario forged as several hosts of a fleet."),
    ) -> None:
        """Build a raw Windows x64 memory image that stock Volatility 3 reads."""
        from ..forge import FORGE_ERRORS, forge

        try:
            result = forge(scenario, output, isf, threads_scale=threads_scale, ram=ram, computer_name=computer_name,
                           processes_scale=processes_scale, host_weight=host_weight)
        except FORGE_ERRORS as exc:
            typer.echo(f"forge: {exc}", err=True)
            raise typer.Exit(2)
        typer.echo(result.summary())
        typer.echo(f"symbols: {result.symbols}  (vol -s {result.symbols.parents[2]} -f {result.image} windows.pslist)")
