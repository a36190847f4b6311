"""The ``callstack-forensics`` command line (typer + rich)."""
