"""32-bit walking (EBP chain, frameless leaf, scan) and the WOW64 splice order Elastic uses."""

import struct

from callstack_forensics.engine.context import ProcessContext, WalkOptions
from callstack_forensics.memory import Module, RegionKind, ThreadInfo, Wow64Context
from callstack_forensics.engine.modules import ImageCache
from callstack_forensics.engine.stack import FoundBy, Frame, ModuleRef, StopReason
from callstack_forensics.engine.summary import summarize
from callstack_forensics.engine.walker import walk_thread
from callstack_forensics.engine.wow64 import splice_wow64, walk_x86

from .synth import SynthProcess

CODE = 0x00401000
SC = 0x00600000
STACK = 0x00200000


def x86_process():
    """32-bit code: stub (leaf) <- f1 (ebp frame) <- shellcode (no frame) <- f2 (ebp frame) <- f3."""
    code = bytearray(b"\xcc" * 0x400)
    # 0x401000 stub: mov eax,1; call dword ptr [0x401300]; ret  -> eip after the call = 0x40100b
    code[0x000:0x00C] = b"\xb8\x01\x00\x00\x00\xff\x15\x00\x13\x40\x00\xc3"
    # 0x401100 f1: push ebp; mov ebp,esp; call 0x401000 -> return 0x401108
    code[0x100:0x108] = b"\x55\x89\xe5\xe8" + struct.pack("<i", 0x401000 - 0x401108)
    # 0x401200 f2: push ebp; mov ebp,esp; call eax -> return 0x401205
    code[0x200:0x205] = b"\x55\x89\xe5\xff\xd0"
    # 0x401280 f3: push ebp; mov ebp,esp; call 0x401200 -> 0x401288
    code[0x280:0x288] = b"\x55\x89\xe5\xe8" + struct.pack("<i", 0x401200 - 0x401288)
    proc = SynthProcess(pid=77, name="legacy.exe")
    proc.map(CODE, bytes(code), "R-X", RegionKind.IMAGE, "C:\\legacy.exe")
    # shellcode: sub esp,0x10; call eax -> return SC+5
    proc.map(SC, b"\x83\xec\x10\xff\xd0" + b"\xcc" * 0x20, "RWX", RegionKind.PRIVATE)
    proc.map(STACK, bytes(0x2000), "RW-", RegionKind.PRIVATE)
    esp = STACK + 0x1000
    words = {
        esp: 0x401108,            # the stub's caller (f1), return address at [esp]
        esp + 4: STACK + 0x1010,  # f1's saved ebp ... f1's frame: [ebp]=saved, [ebp+4]=ret
        STACK + 0x1008: STACK + 0x1030,  # f1 frame: ebp=0x1008 -> saved ebp points at f2's frame
        STACK + 0x100C: SC + 5,          # f1 returns into the shellcode
        STACK + 0x1010: 0x41414141,      # shellcode locals (no frame pointer)
        STACK + 0x1020: 0x401205,        # shellcode returns into f2
        STACK + 0x1030: STACK + 0x1040,  # f2: saved ebp
        STACK + 0x1034: 0x401288,        # f2 returns into f3
        STACK + 0x1040: 0,               # f3: saved ebp 0 (outermost)
        STACK + 0x1044: 0,
    }
    for addr, val in words.items():
        page = proc._pages[addr & ~0xFFF]
        page[addr & 0xFFF : (addr & 0xFFF) + 4] = struct.pack("<I", val)
    return proc, esp


def test_x86_walk_ebp_chain_leaf_and_scan_through_shellcode():
    proc, esp = x86_process()
    ctx = ProcessContext(proc, WalkOptions(), ImageCache())
    frames, stop, _note = walk_x86(ctx, 0x40100B, esp, STACK + 0x1008, STACK, STACK + 0x2000)
    assert [f.address for f in frames] == [0x40100B, 0x401108, SC + 5, 0x401205, 0x401288]
    assert frames[1].method == FoundBy.UNWOUND and frames[1].call_verified
    assert frames[2].symbol_info == "Unbacked" and frames[2].protection == "RWX"
    assert frames[3].method == FoundBy.SCANNED
    assert all(f.is_32bit for f in frames)
    assert stop == StopReason.END_OF_STACK


def mod_frame(i, name):
    return Frame(i, 0x1000 + i, FoundBy.UNWOUND, symbol_info=f"c:\\windows\\system32\\{name}+0x1", module=ModuleRef(name, f"C:\\Windows\\System32\\{name}", 0))


def test_wow64_splice_keeps_64bit_frames_down_to_the_emulator_then_32bit_frames():
    frames64 = [mod_frame(0, "ntdll.dll"), mod_frame(1, "wow64.dll"), mod_frame(2, "wow64.dll"), mod_frame(3, "wow64cpu.dll"),
                mod_frame(4, "wow64.dll"), mod_frame(5, "ntdll.dll"), mod_frame(6, "ntdll.dll")]
    frames32 = [mod_frame(0, "ntdll.dll"), mod_frame(1, "kernelbase.dll"), Frame(2, 0x600005, FoundBy.UNWOUND, symbol_info="Unbacked"),
                mod_frame(3, "kernel32.dll"), mod_frame(4, "ntdll.dll")]
    out, note = splice_wow64(frames64, frames32)
    assert note is None
    assert [f.index for f in out] == list(range(len(out)))
    assert summarize(out).summary == "ntdll.dll|wow64.dll|wow64cpu.dll|wow64.dll|ntdll.dll|kernelbase.dll|Unbacked|kernel32.dll|ntdll.dll"


def test_wow64_thread_uses_the_32bit_context_when_no_64bit_context_exists():
    proc, esp = x86_process()
    thread = ThreadInfo(9, None, wow64=Wow64Context(0x40100B, esp, STACK + 0x1008, STACK + 0x2000, STACK))
    stack = walk_thread(ProcessContext(proc, WalkOptions(), ImageCache()), thread)
    assert stack.is_wow64 and [f.address for f in stack.frames][:2] == [0x40100B, 0x401108]
    assert stack.frames[0].call_verified is None  # no 64-bit part: EIP is where the thread stopped
