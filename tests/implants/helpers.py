"""Hand-made processes for the implant checks: genuine PE images mapped as image VADs (with the
private bytes the VAD would record), private regions, file objects and module files."""

from __future__ import annotations

import struct
from dataclasses import replace

from callstack_forensics.engine.context import ProcessContext, WalkOptions
from callstack_forensics.engine.modules import ImageCache
from callstack_forensics.memory import Module, Region, RegionKind
from callstack_forensics.memory.implantstate import MappedFile

from ..engine.pe_builder import SIZE, TEXT_RVA, build_pe
from ..engine.synth import SynthProcess

SYS32 = "C:\\Windows\\System32\\"
AMSI = 0x7FFBB0000000
NTDLL = 0x7FFBC5A20000
KERNEL32 = 0x7FFBC3E40000
KERNELBASE = 0x7FFBC2F10000
EXE = 0x7FF640000000
SHELLCODE = 0x25000000
HEAP = 0x30000000

# A function body: sub rsp, 0x28; call [rip+0]; add rsp, 0x28; ret, padded to 0x20 bytes.
BODY = bytes.fromhex("4883ec28ff1500000000") + bytes.fromhex("4883c428c3") + b"\xcc" * 17


def image_with(functions: dict[str, bytes], name: str) -> bytes:
    """A PE whose exports are ``functions`` (name -> code), each in a 0x20-byte slot of .text."""
    code = b"".join(body.ljust(0x20, b"\xcc") for body in functions.values())
    exports = [(fname, TEXT_RVA + 0x20 * i) for i, fname in enumerate(functions)]
    return build_pe(code, [], exports, name)


class ImplantProcess(SynthProcess):
    """A SynthProcess whose image VADs record private bytes and file objects, with module files."""

    def __init__(self, pid: int = 7100, name: str = "powershell.exe", wow64: bool = False) -> None:
        super().__init__(pid, name)
        self.process = replace(self.process, is_wow64=wow64)
        self.mapped: dict[int, MappedFile] = {}
        self.files: dict[int, bytes] = {}

    def map_image(self, base: int, data: bytes, path: str, private: int | None = 0, vad_path: str | None = None,
                  linked: bool = True) -> Module:
        self.map(base, data, "R-X", RegionKind.IMAGE, path)
        region = self._regions.pop()
        vad = vad_path if vad_path is not None else path.split(":", 1)[-1]
        self._regions.append(replace(region, path=vad, private_executable_bytes=private))
        module = Module(base, len(data), path, linked=linked)
        self.add_module(module)
        return module

    def map_private(self, address: int, data: bytes, protection: str = "RWX", size: int | None = None) -> None:
        self.map(address, data.ljust(size or len(data), b"\0"), protection, RegionKind.PRIVATE)

    def patch(self, address: int, data: bytes) -> None:
        for i, byte in enumerate(data):
            page = (address + i) & ~0xFFF
            self._pages[page][(address + i) - page] = byte

    def mapped_file(self, allocation_base: int) -> MappedFile | None:
        return self.mapped.get(allocation_base)

    def file_bytes(self, module: Module, address: int, size: int) -> bytes | None:
        data = self.files.get(module.base)
        if data is None or not module.contains(address):
            return None
        offset = address - module.base
        return data[offset : offset + size]


def context(proc: ImplantProcess) -> ProcessContext:
    return ProcessContext(proc, WalkOptions(), ImageCache())


def export_address(base: int, index: int) -> int:
    return base + TEXT_RVA + 0x20 * index


__all__ = ["AMSI", "BODY", "EXE", "HEAP", "ImplantProcess", "KERNEL32", "KERNELBASE", "NTDLL", "SHELLCODE", "SIZE",
           "SYS32", "context", "export_address", "image_with", "struct"]
