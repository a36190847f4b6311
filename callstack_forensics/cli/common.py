"""What ``analyze``, ``report``, ``events`` and ``stacks`` share: options, opening the source, running.

Human output (progress, errors, tables when ``--json`` is given) goes to stderr, machine
output to stdout; errors a person can act on exit with code 2 and one clear message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ..analysis import Analysis, AnalysisOptions, OpenedProcess, Source, analyze
from ..analysis.fingerprint import BackgroundSha256
from ..engine.context import WalkOptions
from ..hostfiles import HostFiles
from ..rules import default_rules_dir, load_rules, rule_folders
from ..sources import SourceError, open_source
from ..yara_scan import YaraScanner, default_yara_dir
from .filters import check_filters
from .progress_view import RichStages

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2

PIPE_WIDTH = 200
SOURCE_HELP = "A Windows memory image (raw, crash dump, ...) or a process minidump (.dmp)."


def rules_option() -> list[Path] | None:
    return typer.Option(None, "--rules", help="More rule folders (Elastic endpoint TOML), added to the shipped rules/; repeatable.")


def no_shipped_rules_option() -> bool:
    return typer.Option(False, "--no-shipped-rules", help="Leave the shipped rules out: run only the --rules folders given.")


def symbols_option() -> list[Path] | None:
    return typer.Option(None, "--symbols", help="Folder of Volatility symbol tables (DIR/windows/ntkrnlmp.pdb/GUID-AGE.json.xz); repeatable.")


def pid_option() -> list[int] | None:
    return typer.Option(None, "--pid", help="Only these process ids (repeatable); their ancestors are still read for lineage.")


def json_option() -> bool:
    return typer.Option(False, "--json", help="Machine output (JSON) on stdout; the human output goes to stderr.")


def quiet_option() -> bool:
    return typer.Option(False, "--quiet", "-q", help="No progress and no tables; errors still show.")


def cache_dir_option() -> Optional[Path]:
    return typer.Option(None, "--cache-dir", help="Volatility's cache folder (default: Volatility's own); a fresh one forgets symbol tables found earlier.")


def files_option() -> list[Path] | None:
    return typer.Option(None, "--files", help="The host's files: a mounted volume or a triage collection keeping original paths (KAPE, Velociraptor); hashes, PE details, signatures and missing module pages from the files that match; repeatable.")


def modules_option() -> list[Path] | None:
    return typer.Option(None, "--modules", help="For a normal minidump: folder of the module files (matched by name, size and timestamp); repeatable.")


@dataclass
class RunOptions:
    """Every option a source-reading command may take; each command fills what it offers."""

    rules: list[Path] = field(default_factory=list)
    no_shipped_rules: bool = False
    symbols: list[Path] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    tids: list[int] = field(default_factory=list)
    as_json: bool = False
    quiet: bool = False
    modules_dirs: list[Path] = field(default_factory=list)
    files_dirs: list[Path] = field(default_factory=list)
    download_symbols: bool = False
    cache_dir: Path | None = None
    max_frames: int = 256
    max_stack_bytes: int = 1 << 20
    yara: bool = True
    hash_source: bool = True

    def walk(self) -> WalkOptions:
        return WalkOptions(max_frames=self.max_frames, max_stack_bytes=self.max_stack_bytes)


def human_console(opts: RunOptions) -> Console:
    """Progress, notes and errors: stderr always (stdout stays clean for --json and pipes); silent with --quiet."""
    return sized(Console(stderr=True, quiet=opts.quiet))


def table_console(opts: RunOptions) -> Console:
    """The tables: stdout, like every command's main output, unless --json holds stdout
    (then stderr); none with --quiet."""
    return sized(Console(stderr=opts.as_json, quiet=opts.quiet))


def sized(console: Console) -> Console:
    """A terminal's own width; ``COLUMNS`` when set; piped without it, wide enough that tables
    keep one line per row (a file or a pager scrolls sideways, it does not wrap)."""
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


def fail(console: Console, message: str) -> typer.Exit:
    """Print an actionable error (even with --quiet) and give the usage/input exit code."""
    Console(stderr=True).print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(EXIT_USAGE)


def escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def quiet_volatility_warnings() -> None:
    """Volatility logs its automagic's dead ends (an offline symbol download...) as warnings; the
    CLI turns a failed setup into one actionable error, so only Volatility's errors are shown."""
    import logging

    logging.getLogger("volatility3").setLevel(logging.ERROR)


def open_with_progress(path: Path, opts: RunOptions, stages: RichStages) -> Source:
    """The source (minidump or image), with Volatility's own setup shown as the ``image`` stage."""

    def open_image(image: Path) -> Source:
        from ..volatility import session  # only for images: a minidump run never imports Volatility

        quiet_volatility_warnings()
        settings = session.VolatilitySettings(list(opts.symbols), opts.cache_dir, opts.download_symbols)
        callback = stages.volatility_callback("image")
        try:
            source = session.open_image(image, settings, callback)
        except session.ImageOpenError as exc:
            raise SourceError(str(exc)) from exc
        stages.finish("image", source.info.windows or "kernel found")
        return source

    source = open_source(path, open_image, opts.modules_dirs)
    source.info.path = str(path)
    source.info.size = path.stat().st_size
    return source


def show_hash(hashing: BackgroundSha256, source: Source, stages: RichStages) -> None:
    """The hash's bar, once the process list has passed the filters: a run refused for a
    ``--pid`` that is not there shows no hash it will not finish."""
    stages.stage("sha256", source.info.size)
    stages.advance("sha256", hashing.done)


def finish_hash(hashing: BackgroundSha256, analysis: Analysis, stages: RichStages) -> None:
    """Wait for what is left of the hash and put it in the record. A file that cannot be read to
    its end leaves the record without a hash and says so: the findings stand."""
    try:
        analysis.source.sha256 = hashing.result()
    except OSError as exc:
        analysis.notes.append(str(exc))
        stages.finish("sha256", "not worked out")
        return
    stages.finish("sha256", analysis.source.sha256[:16] + "...")


def run_analysis(path: Path, opts: RunOptions, console: Console, with_rules: bool = True,
                 emit_ancestors: bool = True) -> Analysis:
    """Open, walk, build events and (``with_rules``) run the rules, with rich progress on ``console``.

    The source's SHA-256 (``opts.hash_source``) is worked out beside all of it, from the start:
    it reads the whole file, often the longest part of the run."""
    check_folders(opts)
    files = open_files(opts.files_dirs)  # before the image: a wrong folder must not cost minutes
    stages = RichStages(console)
    hashing = BackgroundSha256(path, lambda done: stages.advance("sha256", done)) if opts.hash_source else None
    try:
        with stages:
            source = open_with_progress(path, opts, stages)

            def listed(opened: list[OpenedProcess]) -> None:
                check_filters(path, opts.pids, opts.tids, opened)
                if hashing is not None:
                    show_hash(hashing, source, stages)

            options = analysis_options(opts, with_rules, emit_ancestors, files)
            options.on_listed = listed
            analysis = analyze(source, options, stages)
            if hashing is not None:
                finish_hash(hashing, analysis, stages)
            return analysis
    finally:  # a refused, failed or interrupted run stops reading the image
        if hashing is not None:
            hashing.cancel()


def open_files(folders: list[Path]) -> HostFiles | None:
    """The ``--files`` collections, or None without any; a folder that is not one is an input error."""
    if not folders:
        return None
    try:
        return HostFiles.open(folders)
    except NotADirectoryError as exc:
        raise SourceError(str(exc)) from exc


def check_folders(opts: RunOptions) -> None:
    """``--rules`` and ``--symbols`` must name folders: say so before any source is opened."""
    if opts.no_shipped_rules and not opts.rules:
        raise SourceError("--no-shipped-rules needs at least one --rules folder")
    for option, folders in (("--rules", opts.rules), ("--symbols", opts.symbols)):
        for folder in folders:
            if not folder.is_dir():
                raise SourceError(f"{option} {folder}: not a folder")


def analysis_options(opts: RunOptions, with_rules: bool = True, emit_ancestors: bool = True,
                     files: HostFiles | None = None) -> AnalysisOptions:
    """The core's options for ``opts``: the shipped rules (unless ``--no-shipped-rules``) plus
    ``--rules``, YARA, limits, filters, the host's files (``analyze`` and each task of ``fleet``
    build them here, so both find the same)."""
    dirs = rule_folders(default_rules_dir(), opts.rules, with_shipped=not opts.no_shipped_rules)
    options = AnalysisOptions(walk=opts.walk(), rule_dirs=dirs, pids=set(opts.pids) or None,
                              tids=set(opts.tids) or None, emit_ancestors=emit_ancestors, files=files)
    if opts.yara:
        options.yara = YaraScanner.from_dirs([default_yara_dir()])
    if with_rules:
        options.ruleset = load_rules(dirs)
        if not options.ruleset.rules:
            raise SourceError(no_rules_message(dirs, options.ruleset.errors))
    return options


def no_rules_message(dirs: list[Path], errors: list) -> str:
    """A run that can check nothing must not read as clean."""
    why = f"; {len(errors)} rule files failed to load, first: {errors[0]}" if errors else ""
    return f"no rules loaded from {', '.join(str(d) for d in dirs)}{why}: nothing could be checked"
