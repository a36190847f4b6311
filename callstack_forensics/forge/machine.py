"""The state every forge writer shares: memory, page tables, kernel pool, symbol table.

Writers ask the :class:`Machine` for struct buffers by type name; a type the
kernel symbol table lacks (the debugger data block, the WOW64 context, the
32-bit loader structures: fixed ABIs that kernel PDBs do not describe) comes
from the forge's ABI definitions instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .builds import WindowsVersion, windows_version
from .layout import Layout, LayoutError, StructBuffer
from .paging import AddressSpace, KernelHalf
from .physmem import PAGE, PhysicalMemory
from .pool import KernelPool

BOOT_DTB = 0x1AD000          # where Windows 10 keeps the System DTB; inside Volatility's first scan window
KERNEL_BASE = 0xFFFFF8025E200000
POOL_BASE = 0xFFFFB40A12000000
KUSER_KERNEL = 0xFFFFF78000000000
KUSER_USER = 0x7FFE0000
OB_HEADER_COOKIE = 0x5A


@dataclass
class Machine:
    """Physical memory, the kernel half of every address space, the pool, and the layouts."""

    layout: Layout
    abi: Layout
    phys: PhysicalMemory = field(default_factory=PhysicalMemory)
    kernel_half: KernelHalf = field(default_factory=KernelHalf)
    kernel_base: int = KERNEL_BASE
    version: WindowsVersion = field(init=False)
    system_space: AddressSpace = field(init=False)
    pool: KernelPool = field(init=False)

    def __post_init__(self) -> None:
        self.version = windows_version(self.layout)
        for pfn in range(0x150, 0x2A0):  # keep Volatility's DTB window free of anything else
            self.phys.reserve(pfn)
        dtb_pfn = self.phys.claim(BOOT_DTB // PAGE)
        self.system_space = AddressSpace(self.phys, self.kernel_half, dtb_pfn)
        self.pool = KernelPool(self.system_space, self.layout, POOL_BASE)

    # ---- types -------------------------------------------------------------

    def table_for(self, type_name: str) -> Layout:
        """The kernel layout if it describes ``type_name``, else the ABI definitions."""
        if self.layout.has_type(type_name):
            return self.layout
        if self.abi.has_type(type_name):
            return self.abi
        raise LayoutError(f"{self.layout.source}: the symbol table has no type {type_name}")

    def struct(self, type_name: str) -> StructBuffer:
        return StructBuffer(self.table_for(type_name), type_name)

    def size(self, type_name: str) -> int:
        return self.table_for(type_name).type_size(type_name)

    def offset(self, type_name: str, path: str) -> int:
        return self.table_for(type_name).offset(type_name, path)

    def has_field(self, type_name: str, path: str) -> bool:
        try:
            return self.table_for(type_name).has_field(type_name, path)
        except LayoutError:
            return False

    def symbol_va(self, name: str) -> int:
        return self.kernel_base + self.layout.symbol(name)

    # ---- kernel writes -----------------------------------------------------

    def kwrite(self, va: int, data: bytes) -> None:
        self.system_space.write(va, data)

    def kput(self, va: int, buffer: StructBuffer) -> None:
        self.system_space.write(va, bytes(buffer.data))

    def link_list(self, space: AddressSpace, head: int, entries: list[int], pointer_size: int = 8) -> None:
        """Chain LIST_ENTRY (or LIST_ENTRY32) structures at ``entries`` into a circular list at ``head``."""
        type_name = "_LIST_ENTRY" if pointer_size == 8 else "LIST_ENTRY32"
        flink = self.offset(type_name, "Flink")
        blink = self.offset(type_name, "Blink")
        ring = [head] + entries
        for i, node in enumerate(ring):
            nxt, prev = ring[(i + 1) % len(ring)], ring[i - 1]
            space.write(node + flink, nxt.to_bytes(pointer_size, "little"))
            space.write(node + blink, prev.to_bytes(pointer_size, "little"))


def utf16z(text: str) -> bytes:
    """UTF-16LE with the terminating NUL Windows keeps after UNICODE_STRING buffers."""
    return text.encode("utf-16-le") + b"\0\0"


def set_unicode(buffer: StructBuffer, path: str, text: str, text_va: int) -> None:
    """Fill a UNICODE_STRING (or UNICODE_STRING32) field pointing at ``text_va``."""
    length = len(text.encode("utf-16-le"))
    buffer.set(f"{path}.Length", length)
    buffer.set(f"{path}.MaximumLength", length + 2)
    buffer.set(f"{path}.Buffer", text_va)
