"""Where event fields come from: syscall numbers read from stub bytes, device paths, YARA over unbacked memory."""

from __future__ import annotations


from callstack_forensics.engine.context import ProcessContext, WalkOptions
from callstack_forensics.events.paths import VolumeMap, file_fields, registry_key
from callstack_forensics.events.syscalls import Family, SyscallTables, family_of
from callstack_forensics.memory import Module, RegionKind
from callstack_forensics.engine.modules import ImageCache
from callstack_forensics.yara_scan import YaraScanner, default_yara_dir

from ..engine.pe_builder import build_pe
from .helpers import PAYLOAD, Proc, api_frames, events_of, only, stack, sys_frame, thread, view
from ..engine.synth import SynthProcess

NT_BASE = 0x7FF900000000


def _ntdll_with_stubs() -> SynthProcess:
    code = bytearray(b"\xcc" * 0x100)
    code[0x00:0x0B] = b"\x4c\x8b\xd1\xb8\x28\x00\x00\x00\x0f\x05\xc3"  # NtMapViewOfSection 0x28
    code[0x20:0x2B] = b"\x4c\x8b\xd1\xb8\xc8\x00\x00\x00\x0f\x05\xc3"  # NtCreateUserProcess 0xc8
    code[0x40:0x43] = b"\x48\x8b\xc4"  # RtlSomething: not a stub
    exports = [("NtMapViewOfSection", 0x1000), ("NtCreateUserProcess", 0x1020), ("NtHooked", 0x1040)]
    proc = SynthProcess()
    proc.map(NT_BASE, build_pe(bytes(code), [], exports, "ntdll.dll"), "R-X", RegionKind.IMAGE, "ntdll.dll")
    proc.add_module(Module(NT_BASE, 0x6000, "C:\\Windows\\System32\\ntdll.dll"))
    return proc


def test_system_call_numbers_come_from_the_images_own_stubs():
    proc = _ntdll_with_stubs()
    table = SyscallTables().for_process(ProcessContext(proc, WalkOptions(), ImageCache()))
    assert table.names == {0x28: "NtMapViewOfSection", 0xC8: "NtCreateUserProcess"}, "a hooked stub has no number"


def test_families():
    assert family_of("ZwCreateUserProcess") is Family.PROCESS_CREATE
    assert family_of("NtWaitForWorkViaWorkerFactory") is Family.WAIT
    assert family_of("NtAlpcSendWaitReceivePort") is Family.WAIT
    assert family_of("NtReadFile") is Family.IO
    assert family_of("NtQuerySystemInformation") is Family.OTHER


def test_device_paths_get_the_drive_the_image_itself_shows():
    volumes = VolumeMap.from_pairs([("\\Device\\HarddiskVolume3\\Windows\\explorer.exe", "C:\\Windows\\explorer.exe"),
                                    ("\\Device\\HarddiskVolume3\\x.exe", "C:\\y.exe")])
    assert volumes.dos_path("\\Device\\HarddiskVolume3\\Users\\a.txt") == "C:\\Users\\a.txt"
    assert volumes.dos_path("\\Device\\HarddiskVolume7\\a.txt") == "\\Device\\HarddiskVolume7\\a.txt", "no guessed letter"
    assert volumes.dos_path("\\??\\D:\\a.txt") == "D:\\a.txt"
    assert volumes.dos_path("\\??\\UNC\\srv\\share\\a") == "\\\\srv\\share\\a"


def test_file_and_registry_names():
    assert file_fields("C:\\a\\Q3 report.docx.knight") == {"path": "C:\\a\\Q3 report.docx.knight",
                                                           "name": "Q3 report.docx.knight", "extension": "knight"}
    assert "extension" not in file_fields("C:\\a\\.hidden")
    assert registry_key("\\REGISTRY\\USER\\S-1-5-21-1_Classes\\CLSID") == ("HKEY_USERS", "S-1-5-21-1_Classes\\CLSID")
    assert registry_key("MACHINE\\SOFTWARE") == ("HKLM", "SOFTWARE")
    assert registry_key("\\Device\\x") is None


def test_shipped_yara_rules_compile():
    scanner = YaraScanner.from_dirs([default_yara_dir()])
    assert scanner.available and not scanner.errors and len(scanner.files) >= 2


def _injected() -> Proc:
    proc = Proc(name="notepad.exe")
    stub = b"\x4c\x8b\xd1\xb8\xc8\x00\x00\x00\x0f\x05\xc3"
    proc.map(PAYLOAD, b"\x90" * 0x100 + stub + b"\xcc" * 0x100, "RWX", RegionKind.PRIVATE)
    proc.map(PAYLOAD + 0x10000, b"\x90" * 0x100 + stub, "RW-", RegionKind.PRIVATE)  # not executable: not scanned
    return proc


def test_yara_hits_in_unbacked_executable_memory_reach_frames_and_events():
    proc = _injected()
    hits = YaraScanner.from_dirs([default_yara_dir()]).scan(proc)
    assert {h.rule for h in hits.hits} == {"Syscall_Stub_In_Unbacked_Memory"}
    assert hits.hits[0].offsets == (0x100,) and hits.scanned == 1
    t = thread(proc, 8, [], win32_start_address=PAYLOAD + 0x100)
    [event] = only(events_of(view(proc, [stack(proc, t, [sys_frame("NtDelayExecution"), *api_frames("Unbacked")])],
                                  yara=hits)), "thread")
    [unbacked] = [f for f in event["process"]["thread"]["Ext"]["call_stack"] if f["symbol_info"] == "Unbacked"]
    assert unbacked["yara"] == ["Syscall_Stub_In_Unbacked_Memory"]
    [match] = event["yara"]["matches"]
    assert match["rule"] == "Syscall_Stub_In_Unbacked_Memory" and match["offsets"] == ["0x100"]


def test_yara_scans_present_pages_only_with_offsets_from_the_region_start():
    from callstack_forensics.yara_scan import _present_runs

    proc = Proc()
    stub = b"\x4c\x8b\xd1\xb8\xc8\x00\x00\x00\x0f\x05\xc3"
    proc.map(PAYLOAD, b"\xcc" * 0x2010 + stub + bytes(0x100), "RWX")
    proc.unmap_page(PAYLOAD + 0x1000)
    [region] = [r for r in proc.regions() if r.start == PAYLOAD]
    assert [(start - PAYLOAD, len(data)) for start, data in _present_runs(proc, region)] == [(0, 0x1000), (0x2000, 0x1000)]
    [hit] = YaraScanner.from_dirs([default_yara_dir()]).scan(proc).hits
    assert hit.rule == "Syscall_Stub_In_Unbacked_Memory" and hit.offsets == (0x2010,)
