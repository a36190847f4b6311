"""Check 9: exports of system DLLs patched to return at once or to jump away."""

from __future__ import annotations

import struct

from callstack_forensics.events.implants import patches

from .helpers import AMSI, BODY, KERNEL32, KERNELBASE, NTDLL, SHELLCODE, SYS32, ImplantProcess, context, \
    export_address, image_with

AMSI_FUNCTIONS = {"AmsiInitialize": BODY, "AmsiOpenSession": BODY, "AmsiScanBuffer": BODY, "AmsiScanString": BODY}
E_INVALIDARG_RET = bytes.fromhex("b857000780c3")


def amsi_process(private: int | None = 0x1000) -> tuple[ImplantProcess, object]:
    proc = ImplantProcess()
    module = proc.map_image(AMSI, image_with(AMSI_FUNCTIONS, "amsi.dll"), SYS32 + "amsi.dll", private=private)
    proc.map_private(SHELLCODE, b"\x90" * 0x100)
    return proc, module


def found(proc, module) -> dict[str, patches.PatchedExport]:
    return {p.export: p for p in patches.patched_exports(context(proc), module)}


def test_amsiscanbuffer_returning_e_invalidarg_is_patched_with_its_disassembly():
    proc, module = amsi_process()
    proc.patch(export_address(AMSI, 2), E_INVALIDARG_RET)
    [patch] = found(proc, module).values()
    assert patch.export == "AmsiScanBuffer" and patch.form.form == "return"
    assert patch.form.disassembly == ("mov eax, 0x80070057", "ret")
    ecs = patch.to_ecs()
    assert ecs["bytes"] == "b857000780c3" and ecs["return_value"] == "0x80070057"
    assert ecs["symbol_info"] == "c:\\windows\\system32\\amsi.dll!AmsiScanBuffer"
    assert "Windows ships it with a body" in ecs["reason"]


def test_a_bare_ret_and_xor_ret_are_returns_at_once():
    proc, module = amsi_process()
    proc.patch(export_address(AMSI, 0), b"\xc3")
    proc.patch(export_address(AMSI, 3), bytes.fromhex("31c0c3"))
    got = found(proc, module)
    assert set(got) == {"AmsiInitialize", "AmsiScanString"}
    assert got["AmsiScanString"].form.return_value == 0


def test_no_private_page_means_the_shared_image_bytes_and_no_finding():
    proc, module = amsi_process(private=0)
    proc.patch(export_address(AMSI, 2), E_INVALIDARG_RET)
    assert found(proc, module) == {}


def test_a_source_without_private_page_counts_judges_by_form():
    proc, module = amsi_process(private=None)
    proc.patch(export_address(AMSI, 2), E_INVALIDARG_RET)
    assert set(found(proc, module)) == {"AmsiScanBuffer"}


def test_a_module_file_with_the_same_bytes_says_shipped_and_one_that_differs_says_patched():
    proc, module = amsi_process(private=None)
    proc.patch(export_address(AMSI, 2), E_INVALIDARG_RET)
    shipped = bytearray(proc.read(AMSI, 0x6000))
    proc.files[AMSI] = bytes(shipped)
    assert found(proc, module) == {}
    shipped[export_address(AMSI, 2) - AMSI : export_address(AMSI, 2) - AMSI + 6] = BODY[:6]
    proc.files[AMSI] = bytes(shipped)
    [patch] = found(proc, module).values()
    assert patch.to_ecs()["file_bytes"] == BODY[:6].hex()


def test_a_return_at_once_elsewhere_is_no_finding_without_a_file_that_differs():
    proc = ImplantProcess()
    module = proc.map_image(NTDLL, image_with({"DbgUserBreakPoint": b"\xcc\xc3", "RtlStubbed": b"\xc3"}, "ntdll.dll"),
                            SYS32 + "ntdll.dll", private=0x1000)
    assert found(proc, module) == {}


def test_an_inline_hook_jumping_into_unbacked_memory_is_named_with_its_target():
    proc, module = amsi_process()
    hook = bytes.fromhex("ff2500000000") + struct.pack("<Q", SHELLCODE + 0x10)
    proc.patch(export_address(AMSI, 1), hook)
    [patch] = found(proc, module).values()
    assert patch.export == "AmsiOpenSession" and patch.form.form == "jump"
    assert patch.target.symbol_info == "Unbacked" and patch.target.protection == "RWX"
    assert patch.to_ecs()["disassembly"] == "jmp qword ptr [rip]"


def test_jumps_that_windows_ships_are_not_patches():
    """kernel32's thunk through its own import table into kernelbase, and a jump inside the module."""
    proc = ImplantProcess()
    slot = 0x3800  # an import-table slot inside kernel32's image
    thunk_rva = 0x1000
    thunk = b"\xff\x25" + struct.pack("<i", slot - (thunk_rva + 6))
    internal = b"\xe9" + struct.pack("<i", 0x1000 + 0x40 - (0x1020 + 5))
    module = proc.map_image(KERNEL32, image_with({"CreateFileW": thunk, "GetTickCount": internal, "Body": BODY},
                                                 "kernel32.dll"), SYS32 + "kernel32.dll", private=0x1000)
    proc.map_image(KERNELBASE, image_with({"CreateFileW": BODY}, "kernelbase.dll"), SYS32 + "kernelbase.dll")
    proc.patch(KERNEL32 + slot, struct.pack("<Q", KERNELBASE + 0x1000))
    assert found(proc, module) == {}


def test_a_hot_patch_jump_followed_to_a_jump_out_of_the_module_is_a_hook():
    proc = ImplantProcess()
    module = proc.map_image(KERNEL32, image_with({"A": BODY, "B": BODY}, "kernel32.dll"), SYS32 + "kernel32.dll",
                            private=0x1000)
    trampoline = KERNEL32 - 0x100000  # near the module, as a rel32 jump needs
    proc.map_private(trampoline, b"\x90" * 0x100)
    slot = export_address(KERNEL32, 0) + 0x18  # spare bytes of the slot before B
    proc.patch(slot, b"\xe9" + struct.pack("<i", trampoline - (slot + 5)))
    proc.patch(export_address(KERNEL32, 1), b"\xeb" + bytes([(slot - (export_address(KERNEL32, 1) + 2)) & 0xFF]))
    [patch] = found(proc, module).values()
    assert patch.export == "B" and patch.target.symbol_info == "Unbacked"


def test_bytes_the_source_lacks_are_never_a_finding():
    proc, module = amsi_process()
    proc.patch(export_address(AMSI, 2), E_INVALIDARG_RET)
    proc.unmap_page(AMSI + 0x1000)
    assert found(proc, module) == {}


def test_modules_outside_the_watched_set_are_not_scanned():
    proc = ImplantProcess()
    module = proc.map_image(0x7FF700000000, image_with({"AmsiScanBuffer": b"\xc3"}, "evil.dll"),
                            "C:\\Users\\Public\\evil.dll", private=0x1000)
    assert found(proc, module) == {}


def test_library_fields_carry_the_patches_and_a_sentence_per_patch():
    proc, module = amsi_process()
    proc.patch(export_address(AMSI, 2), E_INVALIDARG_RET)
    fields, details = patches.library_fields(context(proc), module)
    assert [p["name"] for p in fields["patched_exports"]] == ["AmsiScanBuffer"]
    assert details == ["c:\\windows\\system32\\amsi.dll!AmsiScanBuffer: mov eax, 0x80070057 ; ret "
                       "(returns at once; Windows ships it with a body)"]
