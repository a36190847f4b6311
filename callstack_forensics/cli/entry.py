"""The console script's entry point: what a command can start before the CLI itself is imported.

A local ``fleet`` run waits for its workers' fork server, whose imports (Dask, the analysis,
Volatility: ~0.6 s) are the longest step of the cluster's start. Started here, before the CLI's
own imports and checks (typer, rich, the analysis, the rules: ~0.4 s), the two run side by side on
two cores instead of one after the other. Any other command goes straight to the CLI.
Every command imports with the cyclic collector paused and exits without its last full scan of
the heap (``process_life``).
"""

from __future__ import annotations

import sys

from ..process_life import collector_paused, freeze_at_exit

# fleet's commands that read a case folder: no cluster, no server
READING_COMMANDS = frozenset({"query", "rare", "report", "export"})


def main() -> None:
    freeze_at_exit()
    with collector_paused():
        if starts_a_local_fleet(sys.argv[1:]):
            from ..fleet.cluster import start_worker_server

            start_worker_server()
            import distributed  # noqa: F401 - the run imports it before its first task: here, the collector paused
        from .app import main as run_cli
    run_cli()


def starts_a_local_fleet(args: list[str]) -> bool:
    """Whether ``args`` run the fleet on a local cluster: ``fleet SOURCES...`` or ``fleet run ...``
    with no ``--scheduler`` and no ``--help``. A wrong guess costs little either way: a server
    started for a command that then stops on bad input exits with it, and a run that started none
    here starts it itself."""
    if len(args) < 2 or args[0] != "fleet" or args[1] in READING_COMMANDS:
        return False
    return not any(a in ("--help", "-h", "--scheduler") or a.startswith("--scheduler=") for a in args[1:])


if __name__ == "__main__":
    main()
