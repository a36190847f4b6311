"""Module images from files on disk, for dumps that hold only stacks (``--modules DIR``).

A normal minidump (procdump without ``-ma``, many WER dumps) records each module's name,
base, SizeOfImage and timestamp but none of its pages, so unwind data, exports and
call-site bytes are missing. Given the module files (copied from the host, or a symbol
store), a module is filled in only from a file whose name, SizeOfImage and PE timestamp
all match: a different build of ntdll would unwind garbage. The file is mapped by
sections and relocated to the base the dump records, so its bytes are the ones the
process had. A module with no matching file keeps reading as missing, with a reason that
says which file was wanted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pefile

from .interface import HandleInfo, MemoryMissing, Module, ProcessMemory, Region, ThreadInfo

MAX_FILES = 200_000  # a DIR argument pointing at / must not walk the whole disk forever


@dataclass(slots=True)
class ModuleFiles:
    """The files of some folders (recursively), indexed by lower-case file name."""

    directories: list[Path]
    by_name: dict[str, list[Path]] = field(default_factory=dict)

    @classmethod
    def scan(cls, directories: Sequence[Path]) -> "ModuleFiles":
        files = cls(list(directories))
        count = 0
        for directory in directories:
            if not directory.is_dir():
                raise NotADirectoryError(f"{directory}: not a folder")
            for path in directory.rglob("*"):
                if count >= MAX_FILES:
                    return files
                if path.is_file():
                    count += 1
                    files.by_name.setdefault(path.name.lower(), []).append(path)
        return files

    @property
    def where(self) -> str:
        return ", ".join(str(d) for d in self.directories)

    def find(self, module: Module) -> tuple[Path | None, str]:
        """The file that is this module (name, SizeOfImage and timestamp agree), or why none is."""
        candidates = self.by_name.get(module.name.lower(), [])
        if not candidates:
            return None, f"no file named {module.name} in {self.where}"
        seen = []
        for path in candidates:
            size, stamp = header_identity(path)
            if size == module.size and (module.timestamp is None or stamp == module.timestamp):
                return path, ""
            seen.append(f"{path.name}: SizeOfImage {hex_or_unknown(size)} timestamp {hex_or_unknown(stamp)}")
        want = f"SizeOfImage {module.size:#x} timestamp {hex_or_unknown(module.timestamp)}"
        return None, f"no file in {self.where} matches {module.name} ({want}); found " + "; ".join(seen[:3])


def header_identity(path: Path) -> tuple[int | None, int | None]:
    """A PE file's (SizeOfImage, TimeDateStamp), the pair a loaded module is matched on; (None, None)
    when the file is not a readable PE."""
    try:
        pe = pefile.PE(str(path), fast_load=True)
        try:
            return int(pe.OPTIONAL_HEADER.SizeOfImage), int(pe.FILE_HEADER.TimeDateStamp)
        finally:
            pe.close()
    except (pefile.PEFormatError, OSError, AttributeError, ValueError):
        return None, None


def hex_or_unknown(value: int | None) -> str:
    return f"{value:#x}" if value is not None else "unknown"


class ModuleFileMemory(ProcessMemory):
    """A dump's memory, with the pages of its modules served from matching files where the
    dump does not hold them. Everything the dump does hold wins over the file."""

    def __init__(self, inner: ProcessMemory, files: ModuleFiles | None) -> None:
        self.inner = inner
        self.files = files
        self.process = inner.process
        self.regions_complete = inner.regions_complete
        self._images: dict[int, bytes | str] = {}

    def read(self, address: int, size: int) -> bytes:
        try:
            return self.inner.read(address, size)
        except MemoryMissing:
            module = self.inner.module_at(address)
            if module is None or address + size > module.end:
                raise
            image = self.image(module)
            if isinstance(image, str):
                raise MemoryMissing(address, image) from None
            offset = address - module.base
            return image[offset : offset + size]

    def image(self, module: Module) -> bytes | str:
        """The module's mapped bytes from its file, or the reason there are none (cached)."""
        found = self._images.get(module.base)
        if found is None:
            found = self._load(module)
            self._images[module.base] = found
        return found

    def _load(self, module: Module) -> bytes | str:
        if self.files is None:
            return f"{module.name} is not in the dump (it holds no module images): pass --modules DIR with the module files"
        path, why = self.files.find(module)
        if path is None:
            return f"{module.name} is not in the dump and {why}"
        try:
            pe = pefile.PE(str(path))
            try:
                mapped = pe.get_memory_mapped_image(ImageBase=module.base)
            finally:
                pe.close()
        except (pefile.PEFormatError, OSError, ValueError) as exc:
            return f"{module.name}: {path} is not a usable PE file ({exc})"
        return bytes(mapped[: module.size]).ljust(module.size, b"\0")

    def file_bytes(self, module: Module, address: int, size: int) -> bytes | None:
        """The module file's bytes at ``address`` (mapped and relocated as the dump's module), or
        None without a matching file: what an export looked like before anything patched it."""
        if self.files is None or not module.contains(address) or address + size > module.end:
            return None
        image = self.image(module)
        if isinstance(image, str):
            return None
        offset = address - module.base
        return image[offset : offset + size]

    def module_sources(self) -> dict[str, str]:
        """Per module name: ``dump``, the file it came from, or why it is missing (for the report)."""
        out = {}
        for module in self.inner.modules():
            try:
                self.inner.read(module.base, 2)
                out[module.name] = "dump"
                continue
            except MemoryMissing:
                pass
            image = self.image(module)
            out[module.name] = image if isinstance(image, str) else f"file: {self.files.find(module)[0]}"
        return out

    def regions(self) -> Sequence[Region]:
        return self.inner.regions()

    def modules(self) -> Sequence[Module]:
        return self.inner.modules()

    def threads(self) -> Sequence[ThreadInfo]:
        return self.inner.threads()

    def handle(self, value: int) -> HandleInfo | None:
        return self.inner.handle(value)
