"""The fake-but-real modules (samples/modules): the catalog, and mapping an image as the loader would.

Mapping lays the sections out at their RVAs (relocated when the base differs),
binds the import address tables to the modules loaded in the same process (so
a ``call [rip+IAT]`` really targets the imported function) and fills the
pointers the Windows loader fills (``Kernel32ThreadInitThunkFunction``...).
Each page keeps its section's protection; identical pages are shared between
processes, as image pages are on Windows.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pefile

from ..engine.pe import PeImage, parse_image
from ..resources import sample_modules_dir
from .plan import PageWrite

PAGE = 0x1000
SCN_EXECUTE, SCN_WRITE = 0x20000000, 0x80000000


class ModuleError(Exception):
    """A module the scenario names is not in the catalog, or cannot be mapped."""


def default_modules_dir() -> Path:
    env = os.environ.get("CALLSTACK_FORGE_MODULES")
    if env:
        return Path(env)
    return sample_modules_dir()  # the checkout's samples/modules, or an installed copy's


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    rva: int
    exported: bool
    data: bool = False


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    arch: str
    file: Path
    path: str
    base: int
    functions: dict[str, Function]
    signing_level: int = 0  # SE_SIGNING_LEVEL_* Code Integrity records for the file (0: not checked)

    @property
    def bits(self) -> int:
        return 64 if self.arch == "x64" else 32


@dataclass(frozen=True)
class _Mapped:
    """A module laid out at one base, before any process binds it (shared by every process)."""

    data: bytes
    sections: tuple[tuple[int, int, int], ...]
    entry_point: int
    timestamp: int
    imports: tuple[tuple[str, str, int], ...]


@dataclass
class Catalog:
    """Every buildable module by (arch, lower-case name); mapped layouts are cached per base."""

    root: Path
    entries: dict[tuple[str, str], CatalogEntry] = field(default_factory=dict)
    _mapped: dict[tuple[str, str, int], _Mapped] = field(default_factory=dict)

    def map(self, entry: CatalogEntry, base: int | None = None, path: str | None = None) -> "MappedImage":
        """A fresh mapped image of ``entry`` at ``base`` (parsing the PE once per base)."""
        base = entry.base if base is None else base
        key = (entry.arch, entry.name.lower(), base)
        if key not in self._mapped:
            self._mapped[key] = _layout(entry, base)
        cached = self._mapped[key]
        return MappedImage(entry, base, path or entry.path, bytearray(cached.data), list(cached.sections),
                           cached.entry_point, cached.timestamp, list(cached.imports))

    @classmethod
    def load(cls, root: Path | None = None) -> "Catalog":
        root = root or default_modules_dir()
        index = root / "catalog.json"
        try:
            raw = json.loads(index.read_text())
        except OSError as exc:
            raise ModuleError(f"module catalog {index} cannot be read: {exc.strerror}") from exc
        catalog = cls(root)
        for arch, modules in raw.items():
            for name, info in modules.items():
                functions = {
                    fname: Function(fname, f["rva"], f["exported"], f.get("data", False))
                    for fname, f in info["functions"].items()
                }
                catalog.entries[(arch, name.lower())] = CatalogEntry(
                    name, arch, root / info["file"], info["path"], info["base"], functions,
                    int(info.get("signing_level", 0)),
                )
        return catalog

    def get(self, name: str, arch: str = "x64") -> CatalogEntry:
        key = (arch, name.lower())
        if key not in self.entries:
            known = ", ".join(sorted(n for a, n in self.entries if a == arch))
            raise ModuleError(f"no {arch} module '{name}' in {self.root / 'catalog.json'} (known: {known})")
        return self.entries[key]

    def has(self, name: str, arch: str = "x64") -> bool:
        return (arch, name.lower()) in self.entries


@dataclass
class MappedImage:
    """One module mapped at ``base`` in one process."""

    entry: CatalogEntry
    base: int
    path: str
    data: bytearray
    sections: list[tuple[int, int, int]]  # (rva, size, characteristics)
    entry_point: int
    timestamp: int
    imports: list[tuple[str, str, int]]   # (dll, function, IAT slot RVA)

    @property
    def name(self) -> str:
        return self.path.rsplit("\\", 1)[-1]

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def end(self) -> int:
        return self.base + self.size

    def contains(self, address: int) -> bool:
        return self.base <= address < self.end

    def address_of(self, function: str) -> int:
        if function not in self.entry.functions:
            raise ModuleError(f"{self.entry.name} has no function '{function}'")
        return self.base + self.entry.functions[function].rva

    def read(self, address: int, size: int) -> bytes:
        offset = address - self.base
        return bytes(self.data[offset : offset + size])

    def put_pointer(self, rva: int, value: int) -> None:
        size = 8 if self.entry.bits == 64 else 4
        if not 0 <= rva <= len(self.data) - size:
            raise ModuleError(f"{self.entry.name}: pointer slot at rva {rva:#x} is outside the image")
        self.data[rva : rva + size] = value.to_bytes(size, "little")

    @cached_property
    def pe(self) -> PeImage:
        """The stack engine's view of this mapped image (exports, .pdata)."""
        data = self.data

        def read(rva: int, size: int) -> bytes:
            return bytes(data[rva : rva + size])

        return parse_image(read)

    def protection_at(self, rva: int) -> int:
        for start, size, characteristics in self.sections:
            if start <= rva < start + max(size, 1):
                return characteristics
        return 0

    def page_writes(self) -> list[PageWrite]:
        """The image's pages with their section protections; identical pages share frames."""
        writes = []
        for offset in range(0, self.size, PAGE):
            page = bytes(self.data[offset : offset + PAGE])
            characteristics = self.protection_at(offset) if offset else 0
            digest = hashlib.sha1(page).hexdigest()[:16]
            writes.append(PageWrite(
                self.base + offset, page,
                writable=False,
                executable=bool(characteristics & SCN_EXECUTE),
                dirty=False,
                share=f"{self.entry.arch}/{self.entry.name}/{digest}",
            ))
        return writes


def map_image(entry: CatalogEntry, base: int | None = None, path: str | None = None) -> MappedImage:
    """Lay the PE file out as the loader maps it (relocated to ``base`` when it differs)."""
    base = entry.base if base is None else base
    cached = _layout(entry, base)
    return MappedImage(entry, base, path or entry.path, bytearray(cached.data), list(cached.sections),
                       cached.entry_point, cached.timestamp, list(cached.imports))


def _layout(entry: CatalogEntry, base: int) -> _Mapped:
    try:
        raw = entry.file.read_bytes()
        pe = pefile.PE(data=raw)
    except (OSError, pefile.PEFormatError) as exc:
        raise ModuleError(f"cannot read module {entry.file}: {exc}") from exc
    linked_base = pe.OPTIONAL_HEADER.ImageBase  # pefile's import addresses stay relative to this
    if base != linked_base:
        pe.relocate_image(base)
    size = (pe.OPTIONAL_HEADER.SizeOfImage + PAGE - 1) & ~(PAGE - 1)
    data = bytearray(pe.get_memory_mapped_image(ImageBase=base)[:size])  # pefile may append the overlay
    data.extend(bytes(size - len(data)))
    sections = [(s.VirtualAddress, s.Misc_VirtualSize, s.Characteristics) for s in pe.sections]
    imports = []
    for descriptor in getattr(pe, "DIRECTORY_ENTRY_IMPORT", []):
        for imp in descriptor.imports:
            if imp.name:
                imports.append((descriptor.dll.decode().lower(), imp.name.decode(), imp.address - linked_base))
    # no pe.close(): it runs a full garbage collection each time, and there is no file mapping to release
    return _Mapped(bytes(data), tuple(sections), pe.OPTIONAL_HEADER.AddressOfEntryPoint,
                   pe.FILE_HEADER.TimeDateStamp, tuple(imports))


def bind_imports(image: MappedImage, loaded: dict[str, MappedImage]) -> list[str]:
    """Fill the import address table from the modules loaded in the process; returns what stayed unbound."""
    missing = []
    for dll, function, slot in image.imports:
        target = loaded.get(dll)
        if target is None or function not in target.entry.functions:
            missing.append(f"{dll}!{function}")
            continue
        image.put_pointer(slot, target.address_of(function))
    return missing


# Pointers the Windows loader sets in one module to a function of another: (module, variable) -> (module, function)
LOADER_POINTERS = [
    ("ntdll.dll", "Kernel32ThreadInitThunkFunction", "kernel32.dll", "BaseThreadInitThunk"),
    ("ntdll.dll", "Wow64LdrpInitializeFunction", "wow64.dll", "Wow64LdrpInitialize"),
    ("wow64.dll", "pfnBTCpuSimulate", "wow64cpu.dll", "BTCpuSimulate"),
]
WOW64_POINTERS = [
    ("ntdll.dll", "Wow64Transition", "wow64cpu.dll", "KiFastSystemCall"),
    ("ntdll.dll", "Kernel32ThreadInitThunkFunction", "kernel32.dll", "BaseThreadInitThunk"),
    ("win32u.dll", "Win32uTransition", "wow64cpu.dll", "KiFastSystemCall"),
]


def bind_loader_pointers(native: dict[str, MappedImage], wow: dict[str, MappedImage],
                         thread_init: str = "kernel32.dll") -> None:
    """Set the pointers the loader fills at process start (thread-init thunk, WOW64 entry points)."""
    for module, variable, target, function in LOADER_POINTERS:
        if module == "ntdll.dll" and variable == "Kernel32ThreadInitThunkFunction":
            target = thread_init
        _bind(native.get(module), variable, native.get(target), function)
    for module, variable, target, function in WOW64_POINTERS:
        source_table = wow
        target_table = native if target == "wow64cpu.dll" else wow
        _bind(source_table.get(module), variable, target_table.get(target), function)


def _bind(image: MappedImage | None, variable: str, target: MappedImage | None, function: str) -> None:
    if image is None or target is None or variable not in image.entry.functions:
        return
    if function not in target.entry.functions:
        raise ModuleError(f"{target.entry.name} does not export {function}, needed for {image.entry.name}!{variable}")
    image.put_pointer(image.entry.functions[variable].rva, target.address_of(function))


def read_pointer(data: bytes, bits: int) -> int:
    return struct.unpack("<Q" if bits == 64 else "<I", data)[0]
