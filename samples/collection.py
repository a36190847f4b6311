"""A disk collection for a forged image, built by code: the files its modules were mapped from,
at their Windows paths, laid out as KAPE keeps them (``<root>/C/Windows/System32/ntdll.dll``).

The forge records which PE file each module was mapped from (``LoadedModule.source``); copying
those files gives exactly what a responder would collect from that machine's disk. With
``sign=True`` the files of other vendors (modules whose cached signing level is not one Windows
gives its own files) are Authenticode-signed first (osslsigncode, a test code-signing
certificate made with openssl): signing appends a certificate table but keeps SizeOfImage and
TimeDateStamp, as a vendor's signed build does, so the files still match the image. Windows' own
files stay without an embedded signature, as on a real system, where a catalog signs them.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterable

SIGNER = "/CN=Callstack Forensics Sample Signing/O=Callstack Forensics Samples/C=US"


WINDOWS_LEVELS = frozenset({8, 12, 14})  # SE_SIGNING_LEVEL Microsoft, Windows, WindowsTcb


def module_files(plans: Iterable) -> dict[str, tuple[Path, int]]:
    """Windows path (as the image names it) -> (the file it was mapped from, its signing level);
    the first module at a path wins."""
    out: dict[str, tuple[Path, int]] = {}
    seen: set[str] = set()
    for plan in plans:
        for module in [*plan.modules, *plan.modules32]:
            if module.source is not None and module.path.lower() not in seen:
                seen.add(module.path.lower())
                out[module.path] = (Path(module.source), module.signing_level)
    return out


def target(root: Path, windows_path: str) -> Path | None:
    """``C:\\Windows\\x.dll`` -> ``root/C/Windows/x.dll`` (None for a path with no drive)."""
    if len(windows_path) < 3 or windows_path[1:3] != ":\\":
        return None
    parts = [p for p in windows_path[3:].split("\\") if p and p not in (".", "..")]
    return root.joinpath(windows_path[0].upper(), *parts)


def build_collection(plans: Iterable, root: Path, sign: bool = False) -> Path:
    """Copy (and optionally sign) every module file of ``plans`` into ``root``; returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    signer = _test_signer(root.parent / "signing") if sign else None
    for windows_path, (source, level) in module_files(plans).items():
        dest = target(root, windows_path)
        if dest is None:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if signer is None or level in WINDOWS_LEVELS:
            shutil.copyfile(source, dest)
        else:
            sign_file(source, dest, *signer)
    return root


def _test_signer(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    if not cert.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                        str(cert), "-days", "3650", "-subj", SIGNER, "-addext", "extendedKeyUsage=codeSigning",
                        "-addext", "keyUsage=digitalSignature"], check=True, capture_output=True)
    return cert, key


def sign_file(source: Path, dest: Path, cert: Path, key: Path) -> None:
    """Authenticode-sign ``source`` into ``dest`` (SHA-256) with osslsigncode."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / dest.name
        subprocess.run(["osslsigncode", "sign", "-certs", str(cert), "-key", str(key), "-h", "sha256",
                        "-in", str(source), "-out", str(out)], check=True, capture_output=True)
        shutil.copyfile(out, dest)
