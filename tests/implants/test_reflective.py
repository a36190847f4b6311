"""Check 10: a PE image in private memory, with its header or with the header wiped."""

from __future__ import annotations

from callstack_forensics.events.implants import reflective

from ..engine.pe_builder import build_pe
from ..engine.synth import unwind_info
from .helpers import SHELLCODE, ImplantProcess, context

BASE = 0x26000000


def mapped_dll(functions: int) -> bytes:
    """A mapped x64 image with ``functions`` functions, each with its .pdata entry and UNWIND_INFO."""
    body = bytes.fromhex("4883ec28") + b"\x90" * 8 + bytes.fromhex("4883c428c3")
    code = body.ljust(0x20, b"\xcc") * functions
    info = unwind_info([(4, 2, 4)], prolog=4)  # UWOP_ALLOC_SMALL 0x28
    return build_pe(code, [(0x1000 + 0x20 * i, 0x1000 + 0x20 * i + 0x11, info) for i in range(functions)],
                    [("ReflectiveLoader", 0x1000)], "beacon.dll")


def scan(proc: ImplantProcess) -> list[reflective.PrivatePe]:
    return reflective.private_pes(context(proc))


def test_a_pe_with_its_header_in_rwx_private_memory():
    proc = ImplantProcess()
    proc.map_private(BASE, mapped_dll(12), "RWX")
    [pe] = scan(proc)
    assert (pe.found_by, pe.machine, pe.size_of_image, pe.header_address) == ("header", "x64", 0x6000, BASE)
    ecs = pe.to_ecs()
    assert ecs["allocation_type"] == "PRIVATE" and ecs["memory_pe_detected"] is True
    assert ecs["region_start_bytes"].startswith("4d5a") and ecs["memory_pe"]["header_wiped"] is False


def test_a_wiped_header_is_found_by_its_pdata():
    image = bytearray(mapped_dll(12))
    image[:0x1000] = bytes(0x1000)
    proc = ImplantProcess()
    proc.map_private(BASE, bytes(image), "RWX")
    [pe] = scan(proc)
    assert pe.found_by == "pdata" and pe.runtime_functions == 12 and pe.pdata_address == BASE + 0x5000
    assert "header wiped" in pe.describe() and pe.to_ecs()["memory_pe"]["header_wiped"] is True


def test_too_few_functions_shellcode_and_non_executable_memory_are_not_images():
    few = bytearray(mapped_dll(reflective.MIN_RUNTIME_FUNCTIONS - 1))
    few[:0x1000] = bytes(0x1000)
    proc = ImplantProcess()
    proc.map_private(BASE, bytes(few), "RWX")
    proc.map_private(SHELLCODE, bytes.fromhex("fc4883e4f0e8c0000000") * 100, "RWX")
    proc.map_private(0x28000000, mapped_dll(12), "RW-")  # a file read into a buffer, not code
    assert scan(proc) == []


def test_missing_pages_are_not_read_as_an_image():
    image = bytearray(mapped_dll(12))
    image[:0x1000] = bytes(0x1000)
    proc = ImplantProcess()
    proc.map_private(BASE, bytes(image), "RWX")
    proc.unmap_page(BASE + 0x5000)  # the .pdata page
    assert scan(proc) == []
