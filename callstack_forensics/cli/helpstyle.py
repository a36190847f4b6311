"""``--help`` in plain words: ``--rules DIR``, ``--pid N``, flags bare, arguments by name.

Typer prints its internal type names (``<bool>``, ``<list[Path]>``, ``<int range>``) beside each
option; a responder reading ``--help`` wants what to type. The command tree is walked once when
the CLI is built and every parameter is given a metavar that says what it takes.
"""

from __future__ import annotations

from typing import Any, Iterator, get_args

FOLDER_OPTIONS = frozenset({"--rules", "--symbols", "--modules", "--cache-dir"})


def plain_help(command: Any) -> Any:
    """``command`` (typer's Click command) with plain metavars on every option and argument of it
    and its subcommands. Typer vendors its own Click, so parameters are told apart by their kind."""
    for cmd in _commands(command):
        for param in cmd.params:
            if param.param_type_name == "argument":
                param.metavar = param.metavar or param.name.upper()
                param.display_type_rich = _no_type  # the name says it; no "<path>" beside it
            elif param.param_type_name == "option" and not param.is_flag and param.metavar is None:
                param.metavar = _metavar(param)
    return command


def _no_type(ctx: Any) -> None:  # noqa: ARG001 - the signature typer calls
    return None


def _metavar(option: Any) -> str:
    names = set(option.opts)
    if names & FOLDER_OPTIONS:
        return "DIR"
    if "--output" in names or "--events" in names or "--isf" in names:
        return "FILE"
    annotation = getattr(getattr(option, "type_descriptor", None), "annotation", None)
    if annotation is int or get_args(annotation) == (int,):  # --max-frames, and repeatable --pid
        return "N"
    return "TEXT"


def _commands(command: Any) -> Iterator[Any]:
    yield command
    for sub in getattr(command, "commands", {}).values():
        yield from _commands(sub)
