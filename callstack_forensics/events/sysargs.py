"""The arguments of a blocked system call, and the user-mode structures they point to.

x64 calling convention, as the ntdll stub hands them to the kernel: arguments 1-4 in
R10 (the stub's ``mov r10, rcx``), RDX, R8, R9, saved in the thread's trap frame at
kernel entry; arguments 5 and up on the user stack at ``[rsp+0x28]``, ``[rsp+0x30]``...
(above the stub's return address and the caller's 32-byte home area). WOW64 threads
make the same 64-bit calls from wow64.dll's thunks, so the same holds for them.

The structures (UNICODE_STRING, OBJECT_ATTRIBUTES, RTL_USER_PROCESS_PARAMETERS, the
PS_ATTRIBUTE_LIST, FILE_RENAME_INFORMATION...) are user-mode ABI layouts fixed by the
x64 calling convention and the SDK headers, not by the kernel build, so their offsets are
spelled out here. Every read may fail (a page not present): the reader then returns
None and the event leaves the field out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..memory import MemoryMissing, ProcessMemory, ThreadInfo

REGISTER_ARGS = ("r10", "rdx", "r8", "r9")
STACK_ARGS_OFFSET = 0x28
MAX_STRING_BYTES = 0x10000
CURRENT_PROCESS = 0xFFFFFFFFFFFFFFFF
CURRENT_THREAD = 0xFFFFFFFFFFFFFFFE

# RTL_USER_PROCESS_PARAMETERS (x64)
PARAMS_FLAGS, PARAMS_IMAGE_PATH, PARAMS_COMMAND_LINE = 0x08, 0x60, 0x70
PARAMS_NORMALIZED = 0x1
# OBJECT_ATTRIBUTES (x64)
OA_ROOT_DIRECTORY, OA_OBJECT_NAME = 0x08, 0x10
# PS_ATTRIBUTE_LIST / PS_ATTRIBUTE (x64)
PS_ATTRIBUTE_SIZE, PS_ATTRIBUTE_IMAGE_NAME = 0x20, 0x20005
# FILE_RENAME_INFORMATION (x64)
RENAME_ROOT_DIRECTORY, RENAME_NAME_LENGTH, RENAME_NAME = 0x08, 0x10, 0x14


@dataclass(slots=True)
class ArgumentReader:
    """Reads argument ``n`` (1-based) of the call a thread is blocked in, and what it points to.

    ``sources`` records where each argument was read (register or stack address), for the
    event's evidence.
    """

    memory: ProcessMemory
    thread: ThreadInfo
    sources: dict[int, str] = field(default_factory=dict)

    def arg(self, n: int) -> int | None:
        regs = self.thread.registers or {}
        if n <= 4:
            value = regs.get(REGISTER_ARGS[n - 1])
            if value is None and n == 1 and "rcx" in regs and regs.get("rcx") != regs.get("rip"):
                value = regs["rcx"]  # the trap frame saved RCX only (it holds R10's copy)
            if value is not None:
                self.sources[n] = f"trap frame {REGISTER_ARGS[n - 1].upper()}"
            return value
        rsp = regs.get("rsp")
        if rsp is None:
            return None
        address = rsp + STACK_ARGS_OFFSET + 8 * (n - 5)
        value = self.u64(address)
        if value is not None:
            self.sources[n] = f"user stack {address:#x}"
        return value

    # ---- primitive reads ------------------------------------------------------------

    def read(self, address: int | None, size: int) -> bytes | None:
        if not address or size < 0 or size > MAX_STRING_BYTES * 4:
            return None
        try:
            return self.memory.read(address, size)
        except (MemoryMissing, ValueError, OverflowError):
            return None

    def u64(self, address: int | None) -> int | None:
        data = self.read(address, 8)
        return None if data is None else struct.unpack("<Q", data)[0]

    def u32(self, address: int | None) -> int | None:
        data = self.read(address, 4)
        return None if data is None else struct.unpack("<I", data)[0]

    def wide(self, address: int | None, size: int) -> str | None:
        if size <= 0 or size % 2 or size > MAX_STRING_BYTES:
            return None
        data = self.read(address, size)
        return None if data is None else data.decode("utf-16-le", "replace")

    # ---- structures ---------------------------------------------------------------------

    def unicode_string(self, address: int | None, base: int = 0) -> str | None:
        """A UNICODE_STRING; ``base`` is added to the buffer pointer (denormalized parameters)."""
        head = self.read(address, 16)
        if head is None:
            return None
        length, _maximum, buffer = struct.unpack("<HH4xQ", head)
        if length == 0:
            return ""
        return self.wide(buffer + base, length)

    def object_attributes(self, address: int | None) -> tuple[str | None, int]:
        """OBJECT_ATTRIBUTES: the object's name and its RootDirectory handle (0 when absolute)."""
        root = self.u64(address + OA_ROOT_DIRECTORY) if address else None
        name_pointer = self.u64(address + OA_OBJECT_NAME) if address else None
        return self.unicode_string(name_pointer), root or 0

    def process_parameters(self, address: int | None) -> tuple[str | None, str | None]:
        """RTL_USER_PROCESS_PARAMETERS: (ImagePathName, CommandLine)."""
        flags = self.u32(address + PARAMS_FLAGS) if address else None
        if flags is None:
            return None, None
        base = 0 if flags & PARAMS_NORMALIZED else address or 0
        return (self.unicode_string(address + PARAMS_IMAGE_PATH, base),
                self.unicode_string(address + PARAMS_COMMAND_LINE, base))

    def attribute_image_name(self, address: int | None) -> str | None:
        """The PS_ATTRIBUTE_IMAGE_NAME entry of a PS_ATTRIBUTE_LIST."""
        total = self.u64(address)
        if not total or total > 0x1000:
            return None
        assert address is not None
        for offset in range(8, int(total) - PS_ATTRIBUTE_SIZE + 1, PS_ATTRIBUTE_SIZE):
            entry = self.read(address + offset, PS_ATTRIBUTE_SIZE)
            if entry is None:
                return None
            attribute, size, value, _ = struct.unpack("<QQQQ", entry)
            if attribute == PS_ATTRIBUTE_IMAGE_NAME:
                return self.wide(value, int(size))
        return None

    def rename_information(self, address: int | None, length: int | None) -> tuple[str | None, int]:
        """FILE_RENAME_INFORMATION: (the new name, its RootDirectory handle)."""
        size = self.u32(address + RENAME_NAME_LENGTH) if address else None
        if size is None or (length is not None and RENAME_NAME + size > length):
            return None, 0
        root = self.u64(address + RENAME_ROOT_DIRECTORY) if address else 0
        return self.wide(address + RENAME_NAME if address else None, size), root or 0
