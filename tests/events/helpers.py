"""Hand-made processes for the event builder: frames, registers, argument structures, handles.

Structures are laid out here from the SDK's x64 definitions (independently of the
builder's reader), in a process whose handle table is a plain dict.
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import replace

from callstack_forensics.engine.context import ProcessContext, WalkOptions
from callstack_forensics.events import ProcessView, Snapshot, SyscallTables, build_events
from callstack_forensics.memory import HandleInfo, Module, RegionKind, ThreadInfo
from callstack_forensics.engine.modules import ImageCache
from callstack_forensics.engine.stack import FoundBy, Frame, ModuleRef, StopReason, ThreadStack
from ..engine.synth import SynthProcess

SYS32 = "C:\\Windows\\System32\\"
NTDLL = 0x7FFBC5A20000
WIN32U = 0x7FFBC2A50000
KERNELBASE = 0x7FFBC2F10000
KERNEL32 = 0x7FFBC3E40000
EXE = 0x7FF600000000
PAYLOAD = 0x25000000
ARENA = 0x30000000
STACK = 0x40000000
RSP = STACK + 0x8000
CAPTURE = dt.datetime(2024, 5, 14, 10, 22, 31, tzinfo=dt.timezone.utc)
SYSCALL_LEADING = "cc" * 54 + "4c8bd1b8c80000000f05"
CALL_LEADING = "cc" * 59 + "e800000000"


class Proc(SynthProcess):
    """A SynthProcess with a handle table, a richer identity and the usual system modules."""

    def __init__(self, pid: int = 100, name: str = "explorer.exe", **info) -> None:
        super().__init__(pid, name)
        path = info.pop("path", "C:\\Windows\\" + name)
        self.process = replace(self.process, path=path, create_time=info.pop("create_time", CAPTURE - dt.timedelta(hours=1)),
                               **info)
        self.handles: dict[int, HandleInfo] = {}
        self._arena = ARENA
        for base, name_ in ((NTDLL, "ntdll.dll"), (WIN32U, "win32u.dll"), (KERNELBASE, "kernelbase.dll"),
                            (KERNEL32, "kernel32.dll")):
            self.add_module(Module(base, 0x10000, SYS32 + name_))
        self.map(STACK, bytes(0x10000), "RW-", RegionKind.PRIVATE)

    def handle(self, value: int) -> HandleInfo | None:
        return self.handles.get(value)

    # ---- argument structures (x64 SDK layouts) ------------------------------------------

    def put(self, data: bytes) -> int:
        address = self._arena
        self.map(address, data, "RW-", RegionKind.PRIVATE)
        self._arena += (len(data) + 0xFFF) & ~0xFFF or 0x1000
        return address

    def unicode(self, text: str) -> int:
        raw = text.encode("utf-16-le")
        buffer = self.put(raw + b"\0\0")
        return self.put(struct.pack("<HH4xQ", len(raw), len(raw) + 2, buffer))

    def object_attributes(self, name: str, root: int = 0) -> int:
        return self.put(struct.pack("<I4xQQI4xQQ", 0x30, root, self.unicode(name), 0x40, 0, 0))

    def process_parameters(self, image: str, command_line: str) -> int:
        params = bytearray(0x400)
        struct.pack_into("<III", params, 0, 0x400, 0x400, 1)  # MaximumLength, Length, Flags: normalized
        for offset, text in ((0x60, image), (0x70, command_line)):
            raw = text.encode("utf-16-le")
            struct.pack_into("<HH4xQ", params, offset, len(raw), len(raw) + 2, self.put(raw + b"\0\0"))
        return self.put(bytes(params))

    def attribute_list(self, image: str) -> int:
        raw = image.encode("utf-16-le")
        return self.put(struct.pack("<QQQQQ", 0x28, 0x20005, len(raw), self.put(raw + b"\0\0"), 0))

    def rename_information(self, new_name: str) -> int:
        raw = new_name.encode("utf-16-le")
        return self.put(struct.pack("<I4xQI", 0, 0, len(raw)) + raw + b"\0\0")


def frame(index: int, symbol: str, module: tuple[str, int] | None = None, protection: str = "R-X",
          leading: str | None = None, address: int | None = None, kind: str = "image") -> Frame:
    """A frame as the walker makes them; ``module``: (file name, base)."""
    ref = ModuleRef(module[0], SYS32 + module[0], module[1]) if module else None
    out = Frame(index, address or ((module[1] if module else PAYLOAD) + 0x1000 + 0x10 * index), FoundBy.UNWOUND,
                symbol, ref, kind, protection, call_verified=None if index == 0 else True)
    out.callsite_leading_bytes = leading if leading is not None else (SYSCALL_LEADING if index == 0 else CALL_LEADING)
    return out


def sys_frame(stub: str, module: str = "ntdll.dll") -> Frame:
    base = NTDLL if module == "ntdll.dll" else WIN32U
    return frame(0, f"{SYS32.lower()}{module}!{stub}+0x14", (module, base))


def api_frames(*symbols: str) -> list[Frame]:
    """Frames after frame 0 named ``module!Function`` (or ``Unbacked``)."""
    bases = {"ntdll.dll": NTDLL, "win32u.dll": WIN32U, "kernelbase.dll": KERNELBASE, "kernel32.dll": KERNEL32}
    out = []
    for i, symbol in enumerate(symbols, start=1):
        if symbol == "Unbacked":
            out.append(frame(i, "Unbacked", None, "RWX", address=PAYLOAD + 0x40 + i, kind="private"))
            continue
        module = symbol.split("!")[0]
        base = bases.get(module, EXE)
        out.append(frame(i, f"{SYS32.lower()}{symbol}+0x1c", (module, base)))
    return out


def thread(proc: Proc, tid: int, args: list[int] | None = None, state: str = "Waiting", **extra) -> ThreadInfo:
    """A thread stopped in a system call with ``args`` laid out by the x64 convention."""
    args = list(args or [])
    regs = {"rip": NTDLL + 0x1014, "rsp": RSP + tid * 0x100}
    for name, value in zip(("r10", "rdx", "r8", "r9"), args[:4]):
        regs[name] = value
    for i, value in enumerate(args[4:]):
        proc.write_u64(regs["rsp"] + 0x28 + 8 * i, value)
    info = ThreadInfo(tid, regs, stack_base=STACK + 0x10000, stack_limit=STACK, state=state,
                      wait_reason=extra.pop("wait_reason", "Executive"), object_address=0xFFFF800000000000 + tid,
                      **extra)
    return info


def stack(proc: Proc, info: ThreadInfo, frames: list[Frame]) -> ThreadStack:
    return ThreadStack(proc.process.pid, info.tid, proc.process.name, frames, StopReason.END_OF_STACK, thread=info)


def view(proc: Proc, stacks: list[ThreadStack] | None = None, yara=None) -> ProcessView:
    ctx = ProcessContext(proc, WalkOptions(), ImageCache())
    return ProcessView(proc.process, ctx, list(stacks or []), yara)


def events_of(*views: ProcessView, tables: SyscallTables | None = None, emit: set[int] | None = None) -> list[dict]:
    return build_events(Snapshot(list(views), CAPTURE, emit), tables)


def only(events: list[dict], category: str, pid: int | None = None, tid: int | None = None) -> list[dict]:
    return [e for e in events if e["event"]["category"] == [category]
            and (pid is None or e["process"]["pid"] == pid)
            and (tid is None or e["process"].get("thread", {}).get("id") == tid)]
