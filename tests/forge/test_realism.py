"""What real machines have and forged images must have too (each read back from the built memory).

Every check here is one a real reader makes (MemProcFS, Volatility): the processor start block in
low memory, the kernel's page-table shape, ntoskrnl as a PE with POOLCODE and exports mapped whole
with large pages, live processes' exit status, counted VAD trees, the 32-bit PEB's place, a base
system of more than ten processes, and system-call stubs with their own unwind entries.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pefile
import pytest

from callstack_forensics.forge import ScenarioError, forge, load_scenario
from callstack_forensics.forge.lowstub import CR3_OFFSET, LM_TARGET_OFFSET, LOW_STUB
from callstack_forensics.forge.modules import Catalog
from callstack_forensics.forge.paging import ADDR_MASK, LARGE_PAGE, NX, PS, AddressSpace, KernelHalf, PageFlags
from callstack_forensics.forge.physmem import PAGE, PhysicalMemory

from .conftest import REPO

SCENARIOS = REPO / "samples" / "scenarios"


@pytest.fixture(scope="module")
def wow64(tmp_path_factory):
    return forge(SCENARIOS / "wow64_injected_thread.toml", tmp_path_factory.mktemp("real") / "w.raw")


def test_low_stub_holds_the_kernel_cr3_and_entry(wow64):
    m = wow64.machine
    head = int.from_bytes(m.phys.read(LOW_STUB, 8), "little")
    assert head & 0xFFFFFFFFFFFF00FF == 0x00000001000600E9     # jmp + completion flag
    assert m.phys.u64(LOW_STUB + CR3_OFFSET) == m.system_space.dtb
    entry = m.phys.u64(LOW_STUB + LM_TARGET_OFFSET)
    assert entry == m.symbol_va("KiSystemStartup") and entry & 3 == 0
    assert m.system_space.read(m.kernel_base, 2) == b"MZ"
    assert m.kernel_base <= entry < m.kernel_base + 0x2000000   # readers scan back at most 32 MiB


def test_kernel_pml4_has_the_regions_of_a_booted_system(wow64):
    m = wow64.machine
    entries = [m.phys.u64(m.system_space.dtb + 8 * i) for i in range(256, 512)]
    supervisor_tables = [e for e in entries if e & 0x8000000000000087 == 0x3]
    assert len(supervisor_tables) >= 6


def test_ntoskrnl_is_a_pe_with_poolcode_and_exports_mapped_whole(wow64):
    m, image = wow64.machine, wow64.assembly.globals.image
    data = m.system_space.read(m.kernel_base, image.size)        # every page present (raises otherwise)
    pe = pefile.PE(data=data, fast_load=True)
    pe.parse_data_directories(directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_EXPORT"]])
    names = [s.Name.rstrip(b"\0").decode() for s in pe.sections]
    assert "POOLCODE" in names and b"POOLCODE" in data[:PAGE]
    data_section = next(s for s in pe.sections if s.Name.startswith(b".data"))
    kdbg = m.layout.symbol("KdDebuggerDataBlock")
    assert data_section.VirtualAddress <= kdbg < data_section.VirtualAddress + data_section.Misc_VirtualSize
    assert pe.DIRECTORY_ENTRY_EXPORT.name == b"ntoskrnl.exe"
    exports = {e.name.decode(): e.address for e in pe.DIRECTORY_ENTRY_EXPORT.symbols}
    system = wow64.assembly.processes[4].va
    assert m.system_space.u64(m.kernel_base + exports["PsInitialSystemProcess"]) == system
    assert exports["PsLoadedModuleList"] == m.layout.symbol("PsLoadedModuleList")
    assert pe.OPTIONAL_HEADER.SizeOfImage == image.size
    assert pe.OPTIONAL_HEADER.AddressOfEntryPoint == m.layout.symbol("KiSystemStartup")
    for offset in range(0, image.size, LARGE_PAGE):             # 2 MiB pages, as Windows maps ntoskrnl
        assert _pde(m.system_space, m.kernel_base + offset) & PS


def _pde(space: AddressSpace, va: int) -> int:
    entry = space.phys.u64(space.dtb + ((va >> 39) & 0x1FF) * 8)
    for shift in (30, 21):
        entry = space.phys.u64((entry & ADDR_MASK) + ((va >> shift) & 0x1FF) * 8)
    return entry


def test_live_processes_pending_and_vad_trees_counted(wow64):
    m = wow64.machine
    exit_status = m.offset("_EPROCESS", "ExitStatus")
    for plan in wow64.plans:
        va = wow64.assembly.processes[plan.pid].va
        assert m.system_space.read(va + exit_status, 4) == struct.pack("<I", 0x103), plan.pid
        assert plan.vads, plan.pid                                 # System too: KUSER_SHARED_DATA
        assert m.system_space.u64(va + m.offset("_EPROCESS", "VadCount")) & 0xFFFFFFFF == len(plan.vads), plan.pid
        assert m.system_space.u64(va + m.offset("_EPROCESS", "VadHint")) != 0, plan.pid
    for (pid, tid), ethread in wow64.assembly.threads.items():
        assert m.system_space.read(ethread + m.offset("_ETHREAD", "ExitStatus"), 4) == struct.pack("<I", 0x103)


def test_wow64_peb32_is_the_page_after_the_peb(wow64):
    plan = wow64.process(6304)
    assert plan.wow64 and plan.peb32 == plan.peb + PAGE
    space = AddressSpace.attach(wow64.machine.phys, wow64.machine.kernel_half, plan.dtb)
    assert space.translate(plan.peb32) is not None


def test_images_are_the_size_of_the_ram_and_sparse(tmp_path: Path):
    result = forge(SCENARIOS / "dirty_vanity_fork.toml", tmp_path / "x.raw", ram="1G")
    stat = result.image.stat()
    assert stat.st_size == 1 << 30 and stat.st_blocks * 512 < 16 << 20


# ---- the base system ------------------------------------------------------------------------------

SMALL = '''
expect = []
[system]
{base}
[[process]]
pid = 4
name = "System"
kernel = true
system_threads = 4
[[process]]
pid = 4120
ppid = 3140
name = "notepad.exe"
  [[process.thread]]
  tid = {tid}
  stack = ["win32u.dll!NtUserGetMessage", "user32.dll!GetMessageW", "notepad.exe!MessageLoop",
           "notepad.exe!wWinMain", "notepad.exe!wWinMainCRTStartup",
           "kernel32.dll!BaseThreadInitThunk", "ntdll.dll!RtlUserThreadStart"]
'''


def _small(tmp_path: Path, base: str = "", tid: int = 4124) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL.format(base=base, tid=tid))
    return path


def test_every_scenario_sits_on_a_base_system_of_more_than_ten_processes(tmp_path: Path):
    for path in sorted(SCENARIOS.glob("*.toml")):
        assert len(load_scenario(path).processes) > 10, path.name
    merged = load_scenario(_small(tmp_path))
    assert [p.pid for p in merged.processes][:2] == [4, 4120]           # the scenario's own come first
    assert {108, 384, 512, 588, 604, 672, 728, 780, 876, 944, 1016, 1060, 3140} <= {p.pid for p in merged.processes}
    assert next(p for p in merged.processes if p.pid == 4).system_threads == 4   # the scenario's System replaces
    alone = load_scenario(_small(tmp_path, 'base = "none"'))
    assert [p.pid for p in alone.processes] == [4, 4120]


def test_base_system_mistakes_are_named(tmp_path: Path):
    with pytest.raises(ScenarioError, match="no base system 'windows3'"):
        load_scenario(_small(tmp_path, 'base = "windows3"'))
    with pytest.raises(ScenarioError, match=r"base windows10: process\[2\] \(smss.exe\).thread\[0\]: tid 388 is also used by process\[1\]"):
        load_scenario(_small(tmp_path, tid=388))  # smss.exe's thread in the base


# ---- system-call stubs ----------------------------------------------------------------------------


def test_ntdll_stubs_are_windows_10_bytes_each_with_its_own_pdata():
    catalog = Catalog.load()
    for module in ("ntdll.dll", "win32u.dll"):
        image = catalog.map(catalog.get(module))
        stubs = [f for f in image.entry.functions.values() if f.name.startswith("Nt") and not f.data]
        assert len(stubs) >= 8
        for stub in stubs:
            code = image.read(image.base + stub.rva, 24)
            assert code[:4] == bytes.fromhex("4c8bd1b8"), stub.name
            assert code[8:] == bytes.fromhex("f604250803fe7f0175030f05c3cd2ec3"), stub.name
            entry = image.pe.function_at(stub.rva)
            assert entry is not None and (entry.begin, entry.end) == (stub.rva, stub.rva + 24), stub.name


# ---- large pages ----------------------------------------------------------------------------------


def test_large_pages_translate_and_refuse_overlaps():
    phys = PhysicalMemory(limit=64 << 20)
    space = AddressSpace(phys, KernelHalf())
    run = phys.claim_run(0x1000, 512)
    va = 0xFFFFF80000000000
    flags = PageFlags(user=False, writable=True, executable=True)
    space.map_large(va, run.start, flags)
    assert space.translate(va + 0x12345) == run.start * PAGE + 0x12345
    space.write(va + 0x1FF000, b"xyz")                              # a page of the run comes into being
    assert phys.read(run.start * PAGE + 0x1FF000, 3) == b"xyz"
    assert not _pde(space, va) & NX
    with pytest.raises(ValueError, match="large page"):
        space.map_page(va + 0x1000, phys.alloc(), flags)
    with pytest.raises(ValueError, match="2 MiB alignment"):
        space.map_large(va + 0x1000, run.start, flags)
    with pytest.raises(ValueError, match="already used"):
        phys.claim_run(0x1100, 16)
