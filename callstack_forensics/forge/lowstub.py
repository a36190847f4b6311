"""The processor start block Windows x64 leaves in low memory (below 1 MiB) for waking processors.

It holds the kernel's page-table root (CR3) and the kernel entry point, which is how memory
readers find both on real hardware: MemProcFS and Volatility scan the pages below 1 MiB for its
first bytes (a real-mode ``jmp`` and the completion flag) and take CR3 at +0xA0 and the long-mode
target at +0x70. A forged image without it leaves them guessing.
"""

from __future__ import annotations

import struct

from .physmem import PAGE, PhysicalMemory

LOW_STUB = 0x1000                 # the first page readers look at (page 0 is the real-mode IVT)
JMP_AND_COMPLETION = bytes.fromhex("e94d0600" "01000000")  # jmp rel16 0x064d; CompletionFlag = 1
LM_TARGET_OFFSET = 0x70           # PROCESSOR_START_BLOCK.LmTarget
CR3_OFFSET = 0xA0                 # .ProcessorState.SpecialRegisters.Cr3


def write_low_stub(phys: PhysicalMemory, cr3: int, entry: int) -> int:
    """Write the start block at :data:`LOW_STUB`; returns its physical address."""
    if cr3 & 0xFFF or cr3 >> 40:
        raise ValueError(f"CR3 {cr3:#x} is not a page below 1 TiB")
    if entry & 3 or entry >> 43 != 0x1FFFFF:
        raise ValueError(f"kernel entry {entry:#x} is not an aligned address in the kernel image range")
    phys.claim(LOW_STUB // PAGE)
    phys.write(LOW_STUB, JMP_AND_COMPLETION)
    phys.write(LOW_STUB + LM_TARGET_OFFSET, struct.pack("<Q", entry))
    phys.write(LOW_STUB + CR3_OFFSET, struct.pack("<Q", cr3))
    return LOW_STUB
