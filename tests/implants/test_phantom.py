"""Check 10: image mappings whose file is deleted, transacted or another file."""

from __future__ import annotations

from callstack_forensics.events.implants import phantom, process_fields
from callstack_forensics.memory import ProcessInfo
from callstack_forensics.memory.implantstate import MappedFile

from .helpers import BODY, SYS32, ImplantProcess, context, image_with

BASE = 0x7FFB90000000
IMAGE = image_with({"DllMain": BODY}, "version.dll")


def test_a_clean_mapping_shows_nothing():
    proc = ImplantProcess()
    module = proc.map_image(BASE, IMAGE, SYS32 + "version.dll")
    proc.mapped[BASE] = MappedFile(0xFFFF9000, "\\Windows\\System32\\version.dll", False, 0)
    assert phantom.image_evasions(context(proc), module).evasions == []


def test_a_deleted_transacted_file_is_two_evasions_with_the_file_object():
    proc = ImplantProcess()
    module = proc.map_image(BASE, IMAGE, SYS32 + "version.dll")
    proc.mapped[BASE] = MappedFile(0xFFFF9000, "\\Windows\\System32\\version.dll", True, 0xFFFF7000)
    found = phantom.image_evasions(context(proc), module)
    assert found.evasions == [phantom.DELETED, phantom.TRANSACTED]
    assert found.fields["mapped_file"] == {"file_object": "0xffff9000", "name": "\\Windows\\System32\\version.dll",
                                           "delete_pending": True, "transacted": True}
    assert "transaction object 0xffff7000" in found.details[1]


def test_a_loader_entry_naming_another_file_is_a_mismatch_but_another_folder_is_not():
    proc = ImplantProcess()
    module = proc.map_image(BASE, IMAGE, SYS32 + "version.dll", vad_path="\\Users\\Public\\payload.dll")
    found = phantom.image_evasions(context(proc), module)
    assert found.evasions == [phantom.MISMATCH] and found.fields["mapped_path"] == "\\Users\\Public\\payload.dll"
    other = ImplantProcess()
    module = other.map_image(BASE, IMAGE, "Z:\\tools\\version.dll", vad_path="\\server\\share\\tools\\VERSION.DLL")
    assert phantom.image_evasions(context(other), module).evasions == []
    short = ImplantProcess()
    module = short.map_image(BASE, IMAGE, "C:\\Users\\alice\\Desktop\\SOMELO~1.EXE",
                             vad_path="\\Users\\alice\\Desktop\\SomeLongToolName.exe")
    assert phantom.image_evasions(context(short), module).evasions == [], "a short name is no other file"


def test_unlinked_or_unnamed_modules_are_not_compared_and_unreadable_file_objects_say_nothing():
    proc = ImplantProcess()
    unlinked = proc.map_image(BASE, IMAGE, SYS32 + "version.dll", vad_path="\\x\\other.dll", linked=False)
    unnamed = proc.map_image(BASE + 0x100000, IMAGE, "Unknown", vad_path="\\x\\other.dll")
    proc.mapped[BASE] = MappedFile(0xFFFF9000, None, None, None)
    assert phantom.image_evasions(context(proc), unlinked).evasions == []
    assert phantom.image_evasions(context(proc), unnamed).evasions == []


def test_the_executable_own_image_gives_the_process_its_defense_evasions():
    proc = ImplantProcess(name="svchost.exe")
    proc.map_image(0x7FF640000000, IMAGE, SYS32 + "svchost.exe")
    proc.mapped[0x7FF640000000] = MappedFile(0xFFFF9000, "\\Users\\x\\AppData\\Local\\Temp\\tmp1.tmp", True, 0)
    info = ProcessInfo(7100, "svchost.exe", path=SYS32 + "svchost.exe")
    fields, details = process_fields(context(proc), info)
    assert fields == {"defense_evasions": [phantom.DELETED]} and "marked for deletion" in details[0]
