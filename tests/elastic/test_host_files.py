"""--files: a collection built by code from the files the forge mapped; hashes, PE details and
Authenticode signatures of the modules that match, refusal of the ones that do not."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import sys
from pathlib import Path

import pefile
import pytest

from callstack_forensics.hostfiles import FileCollection, HostFiles
from callstack_forensics.hostfiles.authenticode import file_signature, load_verifier
from callstack_forensics.hostfiles.memory import HostFileMemory
from callstack_forensics.memory import MemoryMissing, Module

from ..engine.synth import SynthProcess
from .conftest import events_of, process_event

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from samples.collection import build_collection, sign_file, _test_signer  # noqa: E402

SAMPLES = REPO / "samples" / "modules" / "bin" / "x64"
needs_signing = pytest.mark.skipif(shutil.which("osslsigncode") is None or shutil.which("openssl") is None,
                                   reason="osslsigncode and openssl sign the test files (make system-deps installs them)")


def test_collection_layouts_and_case(tmp_path):
    for layout in ("C/Windows/System32", "Windows/system32", "uploads/auto/C%3A/WINDOWS/System32"):
        root = tmp_path / layout.replace("/", "_")
        (root / layout).mkdir(parents=True)
        (root / layout / "NTDLL.dll").write_bytes(b"MZ")
        assert FileCollection(root).locate("C:\\Windows\\System32\\ntdll.dll") == root / layout / "NTDLL.dll"
    assert FileCollection(tmp_path).locate("C:\\Windows\\..\\etc\\passwd") is None
    assert FileCollection(tmp_path).locate("\\Device\\HarddiskVolume3\\x.dll") is None


def _retimed(source: Path, dest: Path) -> None:
    """Another build of the same file: its TimeDateStamp changed."""
    data = bytearray(source.read_bytes())
    offset = struct.unpack_from("<I", data, 0x3C)[0]
    struct.pack_into("<I", data, offset + 8, struct.unpack_from("<I", data, offset + 8)[0] + 1)
    dest.write_bytes(bytes(data))


def _identity(path: Path) -> tuple[int, int]:
    pe = pefile.PE(str(path), fast_load=True)
    return pe.OPTIONAL_HEADER.SizeOfImage, pe.FILE_HEADER.TimeDateStamp


def test_a_matching_file_gives_hashes_and_pe_details_another_build_is_refused(tmp_path):
    folder = tmp_path / "C" / "Windows" / "System32"
    folder.mkdir(parents=True)
    shutil.copyfile(SAMPLES / "ntdll.dll", folder / "ntdll.dll")
    _retimed(SAMPLES / "kernel32.dll", folder / "kernel32.dll")
    files = HostFiles.open([tmp_path])
    size, stamp = _identity(SAMPLES / "ntdll.dll")
    facts = files.facts("C:\\Windows\\System32\\ntdll.dll", size, stamp)
    data = (SAMPLES / "ntdll.dll").read_bytes()
    assert facts.hashes == {"md5": hashlib.md5(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest(),
                            "sha256": hashlib.sha256(data).hexdigest()}
    assert pefile.PE(data=data).get_imphash() == "" and "imphash" not in facts.pe  # ntdll imports nothing
    assert facts.signature is None  # no embedded signature and no CatRoot: no verdict (a catalog may sign it)
    size, stamp = _identity(SAMPLES / "kernel32.dll")
    assert files.facts("C:\\Windows\\System32\\kernel32.dll", size, stamp) is None
    assert len(files.notes) == 1 and "refused" in files.notes[0] and "another build" in files.notes[0]
    assert files.facts("C:\\Windows\\System32\\absent.dll", 0x1000, 1) is None and len(files.notes) == 1


@needs_signing
def test_authenticode_trusted_with_its_root_untrusted_without(tmp_path):
    cert, key = _test_signer(tmp_path / "signing")
    signed = tmp_path / "evilmon.dll"
    sign_file(SAMPLES / "evilmon.dll", signed, cert, key)
    assert _identity(signed) == _identity(SAMPLES / "evilmon.dll")  # signing keeps the module's identity
    verifier = load_verifier()
    assert verifier.problem is None
    untrusted = file_signature(signed, verifier)
    assert untrusted == {"exists": True, "trusted": False, "status": "errorUntrustedRoot",
                         "subject_name": "Callstack Forensics Sample Signing"}
    from signify.x509 import Certificate
    from signify.x509.context import CertificateStore

    store = CertificateStore([Certificate.from_pem(cert.read_bytes())], trusted=True)
    trusted = file_signature(signed, verifier, store)
    assert trusted["trusted"] is True and trusted["status"] == "trusted"
    tampered = tmp_path / "tampered.dll"
    data = bytearray(signed.read_bytes())
    data[0x400] ^= 0xFF  # a byte of code after signing
    tampered.write_bytes(bytes(data))
    assert file_signature(tampered, verifier, store)["status"] == "errorBadDigest"
    assert file_signature(SAMPLES / "evilmon.dll", verifier) is None


def test_missing_module_pages_come_from_the_matching_file(tmp_path):
    folder = tmp_path / "C" / "Windows" / "System32"
    folder.mkdir(parents=True)
    shutil.copyfile(SAMPLES / "ntdll.dll", folder / "ntdll.dll")
    size, stamp = _identity(SAMPLES / "ntdll.dll")
    proc = SynthProcess()
    base = 0x7FFB00000000
    proc.add_module(Module(base, size, "C:\\Windows\\System32\\ntdll.dll", timestamp=stamp))
    memory = HostFileMemory(proc, HostFiles.open([tmp_path]))
    assert memory.read(base, 2) == b"MZ"
    mapped = pefile.PE(str(SAMPLES / "ntdll.dll")).get_memory_mapped_image(ImageBase=base)
    assert memory.read(base + 0x1000, 16) == mapped[0x1000:0x1010]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MemoryMissing):
        HostFileMemory(proc, HostFiles.open([empty])).read(base, 2)  # no file there: still missing


@pytest.fixture(scope="module")
def print_monitor(forged_plans, tmp_path_factory):
    result = forged_plans("print_monitor")
    root = tmp_path_factory.mktemp("collection") / "files"
    build_collection(result.plans, root, sign=shutil.which("osslsigncode") is not None)
    return result, root


def test_events_with_files_carry_hashes_from_the_collected_files(print_monitor):
    result, root = print_monitor
    plain = events_of(result.image)
    rich = events_of(result.image, "--files", str(root))
    spooler, spooler_plain = process_event(rich, "spoolsv.exe"), process_event(plain, "spoolsv.exe")
    assert "hash" not in spooler_plain["process"] and "file_source" not in spooler_plain["process"]["Ext"]
    assert spooler_plain["process"]["pe"] == spooler["process"]["pe"]  # the mapped image says what the file says
    collected = Path(spooler["process"]["Ext"]["file_source"])
    assert collected.is_relative_to(root)
    assert spooler["process"]["hash"]["sha256"] == hashlib.sha256(collected.read_bytes()).hexdigest()
    assert spooler["process"]["pe"]["imphash"] == pefile.PE(str(collected)).get_imphash()
    dlls = [e["dll"] for e in rich if e["event"]["category"] == ["library"] and e["event"]["action"] == "load"
            and e["process"]["pid"] == spooler["process"]["pid"] and e.get("evidence", {}).get("object") in
            ("_LDR_DATA_TABLE_ENTRY", "_MMVAD")]
    linked = [d for d in dlls if not d["Ext"].get("unlinked")]
    assert linked and all(len(d["hash"]["sha256"]) == 64 for d in linked)
    # the unlinked monitor's VAD names its file without a volume: which disk it is on is not in the image
    (unlinked,) = [d for d in dlls if d["Ext"].get("unlinked")]
    assert unlinked["path"] == "\\Windows\\System32\\evilmon.dll"
    assert "hash" not in unlinked
    finals = [e["process"]["thread"]["Ext"]["call_stack_final_user_module"] for e in rich
              if e.get("process", {}).get("thread", {}).get("Ext", {}).get("call_stack_final_user_module", {}).get("path")]
    assert finals and all("hash" in f for f in finals)


@needs_signing
def test_a_third_party_image_shows_its_signer(forged_plans, tmp_path):
    result = forged_plans("benign_desktop")
    root = build_collection(result.plans, tmp_path / "files", sign=True)
    rich = events_of(result.image, "--files", str(root))
    defender = process_event(rich, "MsMpEng.exe")["process"]
    signature = defender["code_signature"]
    assert signature["subject_name"] == "Callstack Forensics Sample Signing" and signature["trusted"] is False
    assert signature["status"] == "errorUntrustedRoot"
    assert signature["Ext"] == {"signing_level": "Antimalware", "source": "Authenticode, MsMpEng.exe"}
    threads = [e for e in rich if e["process"]["pid"] == defender["pid"] and e["event"]["category"] == ["thread"]]
    assert threads and all(e["process"]["code_signature"] == signature for e in threads)
    ntdll = next(e for e in rich if e["event"]["category"] == ["library"] and e["dll"]["name"].lower() == "ntdll.dll")
    # Windows' own file: no embedded signature, listed in the collection's catalog (CatRoot)
    assert ntdll["dll"]["code_signature"] == {"exists": True, "trusted": False, "status": "errorUntrustedRoot",
                                             "subject_name": "Callstack Forensics Sample Signing",
                                             "Ext": {"signing_level": "Windows", "source": "Authenticode, ntdll.dll"}}


def test_a_file_of_another_build_is_refused_with_a_note(print_monitor, tmp_path):
    result, root = print_monitor
    other = tmp_path / "files"
    shutil.copytree(root, other)
    spoolsv = next(other.rglob("spoolsv.exe"))
    _retimed(spoolsv, spoolsv)
    from callstack_forensics.cli.app import build_app
    from typer.testing import CliRunner

    out = tmp_path / "events.ndjson"
    run = CliRunner().invoke(build_app(), ["events", str(result.image), "--symbols", str(result.image.parent / "symbols"),
                                           "--cache-dir", str(tmp_path / "vc"), "-o", str(out), "--files", str(other)])
    assert run.exit_code == 0, run.output
    assert "refused" in run.stderr and "spoolsv.exe" in run.stderr and "another build" in run.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert "hash" not in process_event(events, "spoolsv.exe")["process"]


def test_files_folder_that_does_not_exist_is_an_input_error(print_monitor, tmp_path):
    result, _ = print_monitor
    from callstack_forensics.cli.app import build_app
    from typer.testing import CliRunner

    run = CliRunner().invoke(build_app(), ["events", str(result.image), "--files", str(tmp_path / "nowhere")])
    assert run.exit_code == 2 and "not a folder" in run.stderr


@needs_signing
def test_catalog_signatures_from_the_collections_catroot(tmp_path):
    from samples.collection import CATROOT, build_catalog

    system32 = tmp_path / "C" / "Windows" / "System32"
    system32.mkdir(parents=True)
    for name in ("ntdll.dll", "kernel32.dll"):
        shutil.copyfile(SAMPLES / name, system32 / name)
    cert, key = _test_signer(tmp_path / "signing")
    build_catalog([system32 / "ntdll.dll"], tmp_path / "C" / CATROOT / "nt.cat", cert, key)
    from signify.x509 import Certificate
    from signify.x509.context import CertificateStore

    store = CertificateStore([Certificate.from_pem(cert.read_bytes())], trusted=True)
    files = HostFiles.open([tmp_path], trusted_store=store)
    listed = files.facts("C:\\Windows\\System32\\ntdll.dll", *_identity(SAMPLES / "ntdll.dll"))
    assert listed.signature == {"exists": True, "trusted": True, "status": "trusted",
                                "subject_name": "Callstack Forensics Sample Signing"}
    unlisted = files.facts("C:\\Windows\\System32\\kernel32.dll", *_identity(SAMPLES / "kernel32.dll"))
    assert unlisted.signature == {"exists": False}  # catalogs were searched and none lists it
    untrusted = HostFiles.open([tmp_path]).facts("C:\\Windows\\System32\\ntdll.dll", *_identity(SAMPLES / "ntdll.dll"))
    assert untrusted.signature["status"] == "errorUntrustedRoot" and untrusted.signature["trusted"] is False
