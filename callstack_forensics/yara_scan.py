"""YARA over the unbacked executable memory of a process (``rules/yara/*.yar``).

Call-stack rules say *that* a thread returns into private executable memory; YARA says
*what* is there (a hand-written syscall stub, a shellcode prologue, a reflectively
loaded PE). Only unbacked executable regions are scanned (private memory, or a mapping
with no file behind it): that is where injected code lives, and it keeps the scan
small. A page that is not present is never scanned as zeros: each run of present pages
is scanned on its own, with match offsets relative to the region.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from .resources import shipped_yara_dir
from .memory import PAGE_SIZE, MemoryMissing, ProcessMemory, Region, RegionKind

MAX_REGION_BYTES = 16 << 20
MAX_OFFSETS = 8


def default_yara_dir() -> Path:
    """The shipped YARA rules: ``rules/yara`` in a checkout, package data when installed."""
    return shipped_yara_dir()


def is_unbacked_executable(region: Region) -> bool:
    unbacked = region.kind == RegionKind.PRIVATE or (region.kind == RegionKind.MAPPED and not region.path)
    return unbacked and region.executable is True


@dataclass(frozen=True, slots=True)
class YaraHit:
    """One rule that matched one region."""

    rule: str
    namespace: str
    tags: tuple[str, ...]
    region_start: int
    region_end: int
    offsets: tuple[int, ...] = ()  # of the first string matches, relative to the region

    def to_ecs(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "namespace": self.namespace,
            "tags": list(self.tags),
            "region": f"{self.region_start:#x}-{self.region_end:#x}",
            "offsets": [f"{o:#x}" for o in self.offsets],
        }


@dataclass(slots=True)
class ProcessYara:
    """The hits of one process, looked up by address (a frame, a start address)."""

    hits: list[YaraHit] = field(default_factory=list)
    scanned: int = 0  # regions scanned
    notes: list[str] = field(default_factory=list)

    def at(self, address: int | None) -> list[YaraHit]:
        if address is None or not self.hits:
            return []
        return [h for h in self.hits if h.region_start <= address < h.region_end]


@dataclass
class YaraScanner:
    """Compiled rules; ``errors`` lists the files that did not compile (the others still run)."""

    rules: Any = None
    files: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_dirs(cls, dirs: Sequence[Path]) -> "YaraScanner":
        try:
            import yara
        except ImportError as exc:  # yara-python is a dependency, but say so rather than crash
            return cls(errors=[f"yara-python is not available: {exc}"])
        scanner = cls()
        paths = sorted(p for d in dirs if d.is_dir() for p in d.glob("*.yar"))
        if not paths:
            return scanner
        try:  # one compile when every file is good (each compile costs libyara ~8 MB while it lives)
            rules = yara.compile(filepaths={path.stem: str(path) for path in paths})
            scanner.files = paths
        except yara.Error:
            rules = scanner._compile_good(yara, paths)
        if rules is not None:
            scanner.rules = _compact(yara, rules)
        return scanner

    def _compile_good(self, yara: Any, paths: list[Path]) -> Any:
        """Compile file by file to name the ones that fail, then the others together."""
        sources: dict[str, str] = {}
        for path in paths:
            try:
                yara.compile(filepath=str(path))
            except yara.Error as exc:
                self.errors.append(f"{path}: {exc}")
                continue
            sources[path.stem] = str(path)
            self.files.append(path)
        return yara.compile(filepaths=sources) if sources else None

    @property
    def available(self) -> bool:
        return self.rules is not None

    def scan(self, memory: ProcessMemory) -> ProcessYara:
        out = ProcessYara()
        if self.rules is None:
            return out
        for region in memory.regions():
            if not is_unbacked_executable(region):
                continue
            out.scanned += 1
            if region.end - region.start > MAX_REGION_BYTES:
                out.notes.append(f"region {region.start:#x} scanned up to {MAX_REGION_BYTES:#x} bytes only")
            for start, data in _present_runs(memory, region):
                out.hits.extend(self._match(region, start, data))
        return out

    def _match(self, region: Region, start: int, data: bytes) -> Iterator[YaraHit]:
        for match in self.rules.match(data=data):
            offsets = sorted({start - region.start + instance.offset
                              for string in match.strings for instance in string.instances})
            yield YaraHit(match.rule, match.namespace, tuple(match.tags), region.start, region.end,
                          tuple(offsets[:MAX_OFFSETS]))


def _compact(yara: Any, rules: Any) -> Any:
    """The same rules without the compiler's memory: a compiled ``Rules`` keeps libyara's
    compiler arena (about 8 MB, whatever the rule count) for as long as it lives, while rules
    saved and loaded back hold only themselves (a few hundred KB). The scanner lives for the
    whole run, so this is 8 MB off every run's peak once the walks' data outgrows start-up."""
    buffer = io.BytesIO()
    try:
        rules.save(file=buffer)
        buffer.seek(0)
        return yara.load(file=buffer)
    except yara.Error:
        return rules


def _present_runs(memory: ProcessMemory, region: Region) -> Iterator[tuple[int, bytes]]:
    """Runs of consecutive present pages of a region (missing pages split runs, never zero-fill)."""
    end = min(region.end, region.start + MAX_REGION_BYTES)
    run_start, run = region.start, bytearray()
    for page in range(region.start, end, PAGE_SIZE):
        try:
            run += memory.read(page, min(PAGE_SIZE, end - page))
        except (MemoryMissing, ValueError):
            if run:
                yield run_start, bytes(run)
            run_start, run = page + PAGE_SIZE, bytearray()
    if run:
        yield run_start, bytes(run)
