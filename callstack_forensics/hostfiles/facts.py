"""What a collected file says about a module: hashes, PE details, signature; or why it is refused.

A file is that module only when its path, SizeOfImage and PE TimeDateStamp are the module's:
the same path can hold another build (an update installed after the process started), whose
hashes and signature would describe something the process never ran. Such a file is refused,
with a note naming both identities.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pefile

from ..memory import Module
from ..memory.modulefiles import header_identity, hex_or_unknown
from .authenticode import Verifier, file_signature, load_verifier
from .catalogs import CatalogIndex
from .collection import FileCollection

VERSION_KEYS = {  # Elastic's pe.* name: the VERSIONINFO string
    "original_file_name": b"OriginalFilename",
    "product": b"ProductName",
    "company": b"CompanyName",
    "description": b"FileDescription",
    "file_version": b"FileVersion",
}
MAX_FILE_BYTES = 512 << 20  # a module file bigger than this is not read whole


@dataclass(frozen=True)
class FileFacts:
    """One collected file's evidence, in Elastic's field shapes."""

    path: Path
    hashes: dict[str, str]
    pe: dict[str, str]
    signature: dict[str, Any] | None


@dataclass
class HostFiles:
    """Every ``--files`` folder; finds, checks and describes the files of modules."""

    collections: list[FileCollection]
    trusted_store: Any = None  # signify CertificateStore to trust instead of Microsoft's roots (tests)
    notes: list[str] = field(default_factory=list)
    _facts: dict[tuple[str, int, int | None], FileFacts | None] = field(default_factory=dict, repr=False)
    _verifier: Verifier | None = field(default=None, repr=False)
    _catalogs: CatalogIndex | None = field(default=None, repr=False)

    @classmethod
    def open(cls, folders: Sequence[Path], trusted_store: Any = None) -> "HostFiles":
        for folder in folders:
            if not Path(folder).is_dir():
                raise NotADirectoryError(f"--files {folder}: not a folder")
        return cls([FileCollection(Path(f)) for f in folders], trusted_store)

    @property
    def where(self) -> str:
        return ", ".join(str(c.root) for c in self.collections)

    def find(self, module: Module) -> tuple[Path | None, str]:
        """The collected file that is ``module`` (path, SizeOfImage and timestamp agree), or why none is."""
        return self._match(module.path, module.size, module.timestamp)

    def facts(self, windows_path: str, size: int, timestamp: int | None) -> FileFacts | None:
        """The evidence of the file that is this module, once per module identity; None when there is none."""
        key = (windows_path.lower(), size, timestamp)
        if key not in self._facts:
            path, why = self._match(windows_path, size, timestamp)
            if path is None and why.startswith("refused"):
                self.notes.append(why)
            self._facts[key] = self._describe(path) if path is not None else None
        return self._facts[key]

    def _match(self, windows_path: str, size: int, timestamp: int | None) -> tuple[Path | None, str]:
        found = next((p for p in (c.locate(windows_path) for c in self.collections) if p is not None), None)
        if found is None:
            return None, f"no file at {windows_path} in {self.where}"
        file_size, file_stamp = header_identity(found)
        if timestamp is None:
            return None, f"refused {found}: the image does not record the module's timestamp, so it cannot be matched"
        if (file_size, file_stamp) != (size, timestamp):
            return None, (f"refused {found}: SizeOfImage {hex_or_unknown(file_size)} timestamp {hex_or_unknown(file_stamp)}, but the "
                          f"module at {windows_path} has SizeOfImage {size:#x} timestamp {timestamp:#x}: another build")
        return found, ""

    def _describe(self, path: Path) -> FileFacts | None:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                return None
            data = path.read_bytes()
        except OSError:
            return None
        hashes = {name: hashlib.new(name, data).hexdigest() for name in ("md5", "sha1", "sha256")}
        verifier = self._ensure_verifier()
        return FileFacts(path, hashes, pe_details(data),
                         file_signature(path, verifier, self.trusted_store, self._catalogs))

    def _ensure_verifier(self) -> Verifier:
        """signify and the collection's catalogs, loaded on first use (a run without --files pays nothing)."""
        if self._verifier is None:
            self._verifier = load_verifier()
            if self._verifier.problem:
                self.notes.append(self._verifier.problem)
            if self._verifier.parse_catalog is not None:
                self._catalogs = CatalogIndex.build(self.collections, self._verifier.parse_catalog)
                if self._catalogs.unreadable:
                    self.notes.append(f"{len(self._catalogs.unreadable)} catalogs not read: "
                                      + ", ".join(self._catalogs.unreadable[:5]))
        return self._verifier


def pe_details(data: bytes) -> dict[str, str]:
    """``original_file_name``, ``product``, ``company``, ``description``, ``file_version`` from the
    VERSIONINFO resource and ``imphash`` from the import directory, each when the file has it."""
    try:
        pe = pefile.PE(data=data, fast_load=True)
        pe.parse_data_directories(directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_IMPORT"],
                                               pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_RESOURCE"]])
    except (pefile.PEFormatError, AttributeError, ValueError):
        return {}
    out: dict[str, str] = {}
    strings = _version_strings(pe)
    for name, key in VERSION_KEYS.items():
        value = strings.get(key)
        if value:
            out[name] = value.decode("utf-8", "replace")
    try:
        imphash = pe.get_imphash()
    except (AttributeError, ValueError, pefile.PEFormatError):
        imphash = ""
    if imphash:
        out["imphash"] = imphash
    return out


def _version_strings(pe: pefile.PE) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for info in getattr(pe, "FileInfo", None) or []:
        for entry in info if isinstance(info, list) else [info]:
            for table in getattr(entry, "StringTable", []) or []:
                out.update(getattr(table, "entries", {}) or {})
    return out

