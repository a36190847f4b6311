"""pe.* from the pages in memory: VERSIONINFO strings and the imphash of the mapped image, equal to
what pefile reads from the file; absent where the module has no such resource or the page is gone."""

from __future__ import annotations

from pathlib import Path

import pefile

from callstack_forensics.events.mapped_pe import mapped_pe_fields
from callstack_forensics.memory import Module

from ..engine.synth import SynthProcess
from .conftest import process_event

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "modules" / "bin" / "x64"


def _file_pe(name: str) -> dict[str, str]:
    pe = pefile.PE(str(SAMPLES / name))
    strings = {k.decode(): v.decode() for info in pe.FileInfo for entry in info
               for table in getattr(entry, "StringTable", []) for k, v in table.entries.items()}
    return {"original_file_name": strings["OriginalFilename"], "product": strings["ProductName"],
            "company": strings["CompanyName"], "description": strings["FileDescription"],
            "file_version": strings["FileVersion"], "imphash": pe.get_imphash()}


def test_process_and_module_pe_fields_from_the_mapped_image(benign_events):
    explorer = process_event(benign_events, "explorer.exe")["process"]
    assert explorer["pe"] == _file_pe("explorer.exe")
    assert explorer["pe"]["original_file_name"] == "EXPLORER.EXE"
    kernel32 = next(e["dll"] for e in benign_events if e["event"]["category"] == ["library"]
                    and e["dll"]["name"].lower() == "kernel32.dll")
    assert kernel32["pe"] == _file_pe("kernel32.dll")
    ntdll = next(e["dll"] for e in benign_events if e["event"]["category"] == ["library"]
                 and e["dll"]["name"].lower() == "ntdll.dll")
    assert ntdll["pe"]["original_file_name"] == "ntdll.dll" and "imphash" not in ntdll["pe"]  # imports nothing


def test_a_module_without_version_resource_has_only_its_imphash(forged):
    from .conftest import events_of

    events = events_of(forged("print_monitor"))
    monitor = next(e["dll"] for e in events if e["event"]["category"] == ["library"]
                   and e["dll"]["name"].lower() == "evilmon.dll" and e["dll"].get("Ext", {}).get("unlinked"))
    assert monitor["pe"] == {"imphash": pefile.PE(str(SAMPLES / "evilmon.dll")).get_imphash()}


def _mapped(name: str, drop: int | None = None, rewrite: tuple[str, str] | None = None) -> tuple[SynthProcess, Module]:
    pe = pefile.PE(str(SAMPLES / name))
    base = 0x7FF700000000
    image = bytes(pe.get_memory_mapped_image(ImageBase=base)).ljust(pe.OPTIONAL_HEADER.SizeOfImage, b"\0")
    if rewrite is not None:  # a version string changed in memory, same length
        old, new = (text.encode("utf-16-le") for text in rewrite)
        assert old in image
        image = image.replace(old, new)
    proc = SynthProcess()
    for offset in range(0, len(image), 0x1000):
        if offset != drop:
            proc.map(base + offset, image[offset:offset + 0x1000], "R--")
    return proc, Module(base, len(image), "C:\\Windows\\System32\\" + name)


def test_missing_pages_leave_their_fields_out():
    pe = pefile.PE(str(SAMPLES / "cmd.exe"))
    resource = next(s.VirtualAddress for s in pe.sections if s.Name.startswith(b".rsrc"))
    imports = pe.OPTIONAL_HEADER.DATA_DIRECTORY[1].VirtualAddress & ~0xFFF
    proc, module = _mapped("cmd.exe", drop=resource)
    assert mapped_pe_fields(proc, module) == {"imphash": pe.get_imphash()}
    proc, module = _mapped("cmd.exe", drop=imports)
    fields = mapped_pe_fields(proc, module)
    assert fields["original_file_name"] == "Cmd.Exe" and "imphash" not in fields
    proc, module = _mapped("cmd.exe", drop=0)
    assert mapped_pe_fields(proc, module) == {}  # no header: nothing can be located


def test_a_hostile_source_costs_only_the_pe_fields():
    class Hostile(SynthProcess):
        def read(self, address, size):
            raise RuntimeError("smeared layer")

    proc, module = _mapped("cmd.exe")
    hostile = Hostile()
    assert mapped_pe_fields(hostile, module) == {}


def test_a_version_resource_is_parsed_once_per_content(monkeypatch):
    """The same DLL in many processes: its resource is read in each and parsed once; a process
    whose resource bytes differ (rewritten in memory) gets its own strings, not the kept ones."""
    from callstack_forensics.events import mapped_pe

    parses = []
    parse = mapped_pe._string_file_info
    monkeypatch.setattr(mapped_pe, "_string_file_info", lambda data: parses.append(data) or parse(data))
    parsed: dict[bytes, dict[str, str]] = {}
    first, module = _mapped("cmd.exe")
    second, _ = _mapped("cmd.exe")
    assert mapped_pe_fields(first, module, parsed) == mapped_pe_fields(second, module, parsed) == _file_pe("cmd.exe")
    assert len(parses) == 1
    rewritten, _ = _mapped("cmd.exe", rewrite=("Cmd.Exe", "Evl.Exe"))
    assert mapped_pe_fields(rewritten, module, parsed)["original_file_name"] == "Evl.Exe"
    assert len(parses) == 2
