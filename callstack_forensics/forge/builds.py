"""Which Windows version a kernel symbol table belongs to.

A forged image must tell the same version everywhere (KUSER_SHARED_DATA, the
debugger version block, the PEB, the kernel PE header). An ISF carries the
version only when its producer recorded the PE version; for the public
kernel tables the forge is tested on, the build is known from the PDB GUID;
for any other table the version is inferred from the layout's features.
"""

from __future__ import annotations

from dataclasses import dataclass

from .layout import Layout


@dataclass(frozen=True, slots=True)
class WindowsVersion:
    major: int
    minor: int
    build: int
    revision: int
    csd: int = 0  # service pack, as CmNtCSDVersion >> 8
    server: bool = False

    @property
    def build_lab(self) -> str:
        return f"{self.build}.{self.revision}.amd64fre.forge.000000-0000"

    @property
    def label(self) -> str:
        return f"{self.major}.{self.minor}.{self.build}.{self.revision}"


# PDB GUID -> version, for the kernel builds whose ISFs are public (JPCERTCC/Windows-Symbol-Tables).
KNOWN_BUILDS: dict[str, WindowsVersion] = {
    "339E74133576439CBCDF7E0229DA3773": WindowsVersion(6, 1, 7601, 24540, csd=1),
    "C78AB9DBFFED445096B4DCF7FDD6E5AF": WindowsVersion(6, 3, 9600, 20040),
    "517E128F7B7C4EA79491DE6B9B9CE190": WindowsVersion(10, 0, 14393, 4583, server=True),
    "8B11040A5928757B11390AC78F6B6925": WindowsVersion(10, 0, 17763, 379),
    "35A038B1F6E2E8CAF642111E6EC66F57": WindowsVersion(10, 0, 18362, 30),
    "BBED7C2955FBE4522AAA23F4B8677AD9": WindowsVersion(10, 0, 19041, 329),
    "606FF669409B00F7FC8C61A9C1670129": WindowsVersion(10, 0, 19041, 3570),
    "C2EADB24A615E9472CE47C8ADD31F130": WindowsVersion(10, 0, 20348, 288, server=True),
    "32C1A669D5FFEFD41091F636CFDB6E99": WindowsVersion(10, 0, 22000, 318),
    "0CE4A95C0CD782A7596B034D8648E585": WindowsVersion(10, 0, 22000, 2538),
}


def windows_version(layout: Layout) -> WindowsVersion:
    """The version recorded in the ISF, known for its GUID, or inferred from its types."""
    pe = layout.isf["metadata"].get("windows", {}).get("pe")
    if pe and {"major", "minor", "revision"} <= set(pe):
        return WindowsVersion(int(pe["major"]), int(pe["minor"]), int(pe["revision"]), int(pe.get("build", 0)))
    if layout.guid in KNOWN_BUILDS:
        return KNOWN_BUILDS[layout.guid]
    if layout.has_field("_EPROCESS", "WoW64Process"):
        return WindowsVersion(10, 0, 19041, 1)
    if layout.has_type("_RTL_AVL_TREE") and layout.has_field("_EPROCESS", "VadRoot.Root"):
        return WindowsVersion(6, 3, 9600, 16384)
    return WindowsVersion(6, 1, 7601, 17514, csd=1)
