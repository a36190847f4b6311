"""A disk collection for a forged image, built by code: the files its modules were mapped from,
at their Windows paths, laid out as KAPE keeps them (``<root>/C/Windows/System32/ntdll.dll``).

The forge records which PE file each module was mapped from (``LoadedModule.source``); copying
those files gives exactly what a responder would collect from that machine's disk. With
``sign=True`` the files of other vendors (modules whose cached signing level is not one Windows
gives its own files) are Authenticode-signed first (osslsigncode, a test code-signing
certificate made with openssl): signing appends a certificate table but keeps SizeOfImage and
TimeDateStamp, as a vendor's signed build does, so the files still match the image. Windows' own
files stay without an embedded signature and are listed in a security catalog under CatRoot
instead, as on a real system.
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
    catalogued: list[Path] = []
    for windows_path, (source, level) in module_files(plans).items():
        dest = target(root, windows_path)
        if dest is None:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if signer is None or level in WINDOWS_LEVELS:
            shutil.copyfile(source, dest)
            catalogued.append(dest)
        else:
            sign_file(source, dest, *signer)
    if signer is not None and catalogued:
        build_catalog(catalogued, root / "C" / CATROOT / "Microsoft-Windows-Samples.cat", *signer)
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


CATROOT = "Windows/System32/CatRoot/{F750E6C3-38EE-11D1-85E5-00C04FC295EE}"


def build_catalog(files: list[Path], out: Path, cert: Path, key: Path) -> Path:
    """A Windows security catalog (.cat) listing ``files`` by their Authenticode SHA-256 hash,
    signed by ``cert``: the way Windows signs its own files. The CTL is built with signify's
    ASN.1 definitions (asn1crypto) and signed as CMS with ``openssl cms`` (content type
    szOID_CTL), as makecat and signtool produce it."""
    import datetime
    import hashlib
    import uuid

    from callstack_forensics.hostfiles.authenticode import load_verifier

    problem = load_verifier().problem  # imports signify past its crypto backend's version check
    if problem:
        raise RuntimeError(problem)
    from signify.asn1 import ctl as ctl_asn1  # registers the CTL content type with asn1crypto
    from signify.asn1 import spc
    from signify.authenticode import AuthenticodeFile

    subjects = []
    for path in files:
        with open(path, "rb") as handle:
            digest = AuthenticodeFile.from_stream(handle).get_fingerprint(hashlib.sha256)
        indirect = spc.SpcIndirectDataContent({
            "data": {"type": "microsoft_spc_pe_image_data", "value": spc.SpcPeImageData(
                {"flags": set(), "file": {"file": {"unicode": "<<<Obsolete>>>"}}})},
            "message_digest": {"digest_algorithm": {"algorithm": "sha256"}, "digest": digest},
        })
        subjects.append({
            "subject_identifier": digest.hex().upper().encode("utf-16-le"),
            "subject_attributes": [{"type": "microsoft_spc_indirect_data_content", "values": [indirect]}],
        })
    content = ctl_asn1.CertificateTrustList({
        "subject_usage": ["microsoft_catalog_list"],
        "list_identifier": uuid.uuid4().bytes,
        "ctl_this_update": {"utc_time": datetime.datetime(2024, 5, 1, tzinfo=datetime.timezone.utc)},
        "subject_algorithm": {"algorithm": "microsoft_catalog_list_member_v2"},
        "trusted_subjects": subjects,
    })
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "ctl.der"
        raw.write_bytes(content.dump())
        subprocess.run(["openssl", "cms", "-sign", "-binary", "-nodetach", "-outform", "DER", "-md", "sha256",
                        "-econtent_type", "1.3.6.1.4.1.311.10.1", "-signer", str(cert), "-inkey", str(key),
                        "-in", str(raw), "-out", str(out)], check=True, capture_output=True)
    return out
