"""Windows security catalogs of a collection (``C:\\Windows\\System32\\CatRoot``).

Windows signs most of its own files not inside the file but in a catalog: a signed list of
the files' Authenticode hashes. A collection that keeps CatRoot lets a file without an embedded
signature be verified as Windows verifies it; without CatRoot, no verdict is given for such a
file (it may well be catalog-signed). Each catalog is parsed once, and indexed by the hashes it
lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .collection import FileCollection

CATROOT = "C:\\Windows\\System32\\CatRoot"
MAX_CATALOGS = 20_000
MAX_CATALOG_BYTES = 64 << 20


@dataclass
class CatalogIndex:
    """Catalog hash (lower-case hex) -> the parsed catalog that lists it."""

    by_hash: dict[str, Any] = field(default_factory=dict)
    catalogs: int = 0
    unreadable: list[str] = field(default_factory=list)

    @property
    def searched(self) -> bool:
        """True when at least one catalog was read: a file none lists is then unsigned."""
        return self.catalogs > 0

    @classmethod
    def build(cls, collections: list[FileCollection], parse: Any) -> "CatalogIndex":
        """``parse``: bytes -> catalog object with ``_subjects_by_indirect_data_hash`` (signify's CTL)."""
        index = cls()
        for collection in collections:
            folder = collection.locate_folder(CATROOT)
            if folder is None:
                continue
            for path in sorted(folder.rglob("*.cat"))[:MAX_CATALOGS]:
                index._add(path, parse)
        return index

    def _add(self, path: Path, parse: Any) -> None:
        try:
            if path.stat().st_size > MAX_CATALOG_BYTES:
                raise ValueError("too large")
            catalog = parse(path.read_bytes())
            hashes = list(catalog._subjects_by_indirect_data_hash)
        except Exception as exc:  # a damaged catalog costs only its own entries
            self.unreadable.append(f"{path.name}: {type(exc).__name__}")
            return
        self.catalogs += 1
        for digest in hashes:
            self.by_hash.setdefault(digest, catalog)

    def find(self, fingerprints: list[bytes]) -> Any | None:
        return next((self.by_hash[f.hex()] for f in fingerprints if f.hex() in self.by_hash), None)
