"""The scan's rule against stale values, where it starts, and what trust each frame carries.

Real crash dumps showed the scan taking leftovers of earlier calls: ``sigsegv.exe+0x10d9``
four times in a row, or the same two frames repeated four times; and under Wine, a
``KiUserCallbackDispatcher`` return slot holding ``0xdeadbabe`` made the scan start inside
the dispatcher's frame and take a saved RIP from a jump buffer there. The process here is
built by code: a real PE (``pe_builder``) with functions that have unwind data and
functions that do not, and stacks laid out slot by slot.
"""

import struct
import sys

from callstack_forensics.engine.context import ProcessContext, WalkOptions
from callstack_forensics.engine.modules import ImageCache
from callstack_forensics.engine.stack import FoundBy, StopReason, Trust
from callstack_forensics.engine.unwind import UWOP_ALLOC_SMALL, UWOP_PUSH_NONVOL
from callstack_forensics.engine.walker import walk_thread
from callstack_forensics.memory import Module, RegionKind, ThreadInfo

from .pe_builder import build_pe
from .synth import SynthProcess, unwind_info

BASE = 0x7FFA00000000
STACK = 0x300000
RSP0 = STACK + 0x2000
PATH = "C:\\Windows\\System32\\scanrules.dll"
# function RVAs
STUB, WORKER, NOUNWIND, START, HELPER, OTHER, REC, THUNK, TAIL, IAT = (
    0x1000, 0x1100, 0x1200, 0x1300, 0x1400, 0x1480, 0x1500, 0x1600, 0x1700, 0x2F00)


def rel32(frm_end: int, to: int) -> bytes:
    return struct.pack("<i", to - frm_end)


def call(at: int, to: int) -> bytes:
    return b"\xe8" + rel32(BASE + at + 5, BASE + to)


def code_bytes() -> bytes:
    code = bytearray(b"\xcc" * 0x2000)
    put = lambda rva, data: code.__setitem__(slice(rva - 0x1000, rva - 0x1000 + len(data)), data)  # noqa: E731
    put(STUB, b"\x4c\x8b\xd1\xb8\x23\x00\x00\x00\x0f\x05\xc3")  # NtScanWait: leaf stub, no unwind data
    put(WORKER, b"\x53\x48\x83\xec\x20" + call(WORKER + 5, STUB) + b"\x48\x83\xc4\x20\x5b\xc3")
    # NoUnwind: moves RSP, has no .pdata entry: its caller can only be found by the scan
    put(NOUNWIND, b"\x48\x83\xec\x48" + call(NOUNWIND + 4, WORKER) + b"\x48\x83\xc4\x48\xc3")
    put(START, b"\x48\x83\xec\x28" + call(START + 4, NOUNWIND) + b"\x48\x83\xc4\x28\xc3")
    put(HELPER, b"\xc3")
    put(OTHER, b"\x48\x83\xec\x28" + call(OTHER + 4, HELPER) + b"\x48\x83\xc4\x28\xc3")
    # Rec: recursive, no unwind data
    put(REC, b"\x48\x83\xec\x28" + call(REC + 4, REC) + b"\x48\x83\xc4\x28\xc3")
    # CallsThunk: calls an import thunk (jmp [rip+IAT]) that leads to NoUnwind
    put(THUNK, b"\xff\x25" + rel32(BASE + THUNK + 6, BASE + IAT))
    put(THUNK + 0x10, b"\x48\x83\xec\x28" + call(THUNK + 0x14, THUNK) + b"\x48\x83\xc4\x28\xc3")
    # Tail: a caller whose callee tail-jumped elsewhere: its call leads to Helper
    put(TAIL, b"\x48\x83\xec\x28" + call(TAIL + 4, HELPER) + b"\x48\x83\xc4\x28\xc3")
    return bytes(code)


def ra(rva_of_call_end: int) -> int:
    return BASE + rva_of_call_end


RA_STUB = ra(WORKER + 10)  # return into Worker, after call NtScanWait
RA_WORKER = ra(NOUNWIND + 9)  # return into NoUnwind, after call Worker
RA_NOUNWIND = ra(START + 9)  # return into Start, after call NoUnwind
RA_HELPER = ra(OTHER + 9)  # return into Other, after call Helper: stale here
RA_REC = ra(REC + 9)
RA_THUNK = ra(THUNK + 0x19)
RA_TAIL = ra(TAIL + 9)
FUNCS = [
    (WORKER, WORKER + 0x10, unwind_info([(5, UWOP_ALLOC_SMALL, 3), (1, UWOP_PUSH_NONVOL, 3)], prolog=5)),
    (START, START + 0xE, unwind_info([(4, UWOP_ALLOC_SMALL, 4)], prolog=4)),
    (OTHER, OTHER + 0xE, unwind_info([(4, UWOP_ALLOC_SMALL, 4)], prolog=4)),
    (THUNK + 0x10, THUNK + 0x1E, unwind_info([(4, UWOP_ALLOC_SMALL, 4)], prolog=4)),
    (TAIL, TAIL + 0xE, unwind_info([(4, UWOP_ALLOC_SMALL, 4)], prolog=4)),
]
EXPORTS = [("NtScanWait", STUB), ("Worker", WORKER), ("NoUnwind", NOUNWIND), ("Start", START),
           ("Helper", HELPER), ("Other", OTHER), ("Rec", REC), ("ImportThunk", THUNK), ("Tail", TAIL)]


def walk(slots: dict[int, int], rip: int = BASE + STUB + 0xA, rsp: int = RSP0, top: int = RSP0 + 0x400):
    proc = SynthProcess(pid=50, name="stale.exe")
    image = bytearray(build_pe(code_bytes(), FUNCS, EXPORTS, "scanrules.dll"))
    struct.pack_into("<Q", image, IAT, BASE + NOUNWIND)  # the thunk's import slot
    proc.map(BASE, bytes(image), "R-X", RegionKind.IMAGE, PATH)
    proc.add_module(Module(BASE, 0x6000, PATH))
    proc.map(STACK, bytes(0x3000), "RW-", RegionKind.PRIVATE)
    for address, value in slots.items():
        proc.write_u64(address, value)
    thread = ThreadInfo(tid=51, registers={"rip": rip, "rsp": rsp, "rbx": 0}, stack_base=top, stack_limit=STACK)
    return walk_thread(ProcessContext(proc, WalkOptions(), ImageCache()), thread)


def chain(noun_locals: dict[int, int]) -> dict[int, int]:
    """NtScanWait <- Worker <- NoUnwind (frame of 0x48 bytes holding ``noun_locals`` by offset
    from its RSP) <- Start <- end."""
    rsp_noun = RSP0 + 0x38  # after Worker's return slot at RSP0+0x30
    slots = {RSP0: RA_STUB, RSP0 + 0x30: RA_WORKER, rsp_noun + 0x48: RA_NOUNWIND, rsp_noun + 0x48 + 0x30: 0}
    slots.update({rsp_noun + off: value for off, value in noun_locals.items()})
    return slots


TRUE_CHAIN = [BASE + STUB + 0xA, RA_STUB, RA_WORKER, RA_NOUNWIND]


def test_without_stale_values_the_scan_finds_the_caller_and_its_call_leads_to_the_frame_above():
    stack = walk(chain({}))
    assert [f.address for f in stack.frames] == TRUE_CHAIN
    scanned = stack.frames[3]
    assert scanned.method is FoundBy.SCANNED and scanned.call_consistent is True and scanned.trust is Trust.HIGH
    assert stack.stop_reason is StopReason.END_OF_STACK


def test_a_stale_return_address_four_times_is_no_frame():
    # NoUnwind called Other's... no: its locals hold four copies of a return address left by
    # earlier calls (into Other, after its call to Helper): each call leads to Helper, and the
    # frame above is NoUnwind
    stack = walk(chain({0x08: RA_HELPER, 0x10: RA_HELPER, 0x18: RA_HELPER, 0x20: RA_HELPER}))
    assert [f.address for f in stack.frames] == TRUE_CHAIN


def test_the_same_two_frames_repeated_are_no_frames():
    stale = {0x08: RA_STUB, 0x10: RA_WORKER, 0x18: RA_STUB, 0x20: RA_WORKER, 0x28: RA_STUB, 0x30: RA_WORKER}
    stack = walk(chain(stale))
    assert [f.address for f in stack.frames] == TRUE_CHAIN


def test_recursion_found_by_the_scan_is_kept_because_it_leads_to_itself():
    # Rec (no unwind data) called itself three times; frame 0 is inside the innermost call
    rsp = RSP0
    slots = {rsp + 0x28: RA_REC, rsp + 0x58: RA_REC, rsp + 0x88: RA_REC, rsp + 0xB8: 0}
    stack = walk(slots, rip=BASE + REC + 4, rsp=rsp, top=rsp + 0xC0)
    assert [f.address for f in stack.frames] == [BASE + REC + 4, RA_REC, RA_REC, RA_REC]
    assert [f.call_consistent for f in stack.frames[1:]] == [True, True, True]


def test_a_call_through_an_import_thunk_leads_to_the_frame_above():
    slots = chain({})
    slots[RSP0 + 0x38 + 0x48] = RA_THUNK  # NoUnwind's caller calls it through jmp [IAT]
    slots[RSP0 + 0x38 + 0x48 + 0x30] = 0
    stack = walk(slots)
    assert [f.address for f in stack.frames][3] == RA_THUNK
    assert stack.frames[3].call_consistent is True and stack.frames[3].trust is Trust.HIGH


def test_when_every_candidate_leads_elsewhere_the_first_is_kept_with_low_trust():
    # NoUnwind's real caller called Helper, which tail-jumped into NoUnwind: nothing better exists
    slots = chain({})
    slots[RSP0 + 0x38 + 0x48] = RA_TAIL
    slots[RSP0 + 0x38 + 0x48 + 0x30] = 0
    stack = walk(slots)
    frame = stack.frames[3]
    assert frame.address == RA_TAIL and frame.trust is Trust.LOW and frame.call_consistent is False


def test_unwound_frames_say_whether_their_call_leads_to_the_frame_above():
    stack = walk(chain({}))
    assert stack.frames[1].call_consistent is True  # Worker's call leads to NtScanWait (a leaf stub's export)
    assert stack.frames[0].trust is Trust.HIGH and stack.frames[0].call_consistent is None


def test_a_return_slot_holding_no_code_makes_the_scan_resume_above_it():
    # Worker's unwind data puts its return slot at RSP0+0x30; it holds 0xdeadbabe (as Wine's
    # KiUserCallbackDispatcher slot does). Inside Worker's own frame a jump buffer holds a saved
    # RIP whose call leads to Worker too: starting at Worker's RSP the scan would take it.
    slots = {RSP0: RA_STUB, RSP0 + 0x10: RA_WORKER, RSP0 + 0x30: 0xDEADBABE,
             RSP0 + 0x38: RA_NOUNWIND, RSP0 + 0x38 + 0x30: 0}
    stack = walk(slots)
    assert [f.address for f in stack.frames] == [BASE + STUB + 0xA, RA_STUB, RA_NOUNWIND]
    assert stack.frames[2].stack_pointer == RSP0 + 0x40  # found in the slot above the bad one


NTDLL = 0x7FFA10000000
DISPATCHER = 0x1000
NTDLL_PATH = "C:\\Windows\\System32\\ntdll.dll"


def ntdll_bytes() -> bytes:
    """An ntdll whose KiUserCallbackDispatcher calls a window procedure (at rax) the kernel set
    up; its unwind data (ALLOC_SMALL 0x28) puts the return slot where Wine leaves 0xdeadbabe."""
    code = bytearray(b"\xcc" * 0x100)
    code[0:4] = b"\x48\x83\xec\x28"  # sub rsp, 0x28
    code[4:6] = b"\xff\xd0"  # call rax
    code[6:8] = b"\xeb\xfe"
    funcs = [(DISPATCHER, DISPATCHER + 0x10, unwind_info([(4, UWOP_ALLOC_SMALL, 4)], prolog=4))]
    return build_pe(bytes(code), funcs, [("KiUserCallbackDispatcher", DISPATCHER)], "ntdll.dll")


def test_below_a_kernel_entry_point_the_interrupted_frame_is_taken_whatever_its_call_led_to():
    # a thread inside a window procedure the kernel called back through KiUserCallbackDispatcher,
    # while the thread was in a system call made from Worker (its return into Worker follows a
    # call to the stub, not to the dispatcher); a stale value whose call target is unknown lies
    # above it. The stub's call cannot lead to the dispatcher: nothing calls a kernel entry point.
    ra_dispatcher = NTDLL + DISPATCHER + 6
    rsp = RSP0
    slots = {rsp: ra_dispatcher,  # frame 0: the window procedure (NtScanWait stands in for it)
             rsp + 0x8 + 0x28: 0xDEADBABE,  # the dispatcher's return slot
             rsp + 0x8 + 0x28 + 0x18: RA_STUB,  # Worker, which made the system call
             rsp + 0x8 + 0x28 + 0x18 + 0x28: 0xB0B0,
             rsp + 0x8 + 0x28 + 0x18 + 0x30: RA_WORKER,
             rsp + 0x8 + 0x28 + 0x18 + 0x38 + 0x48: RA_NOUNWIND,
             rsp + 0x8 + 0x28 + 0x18 + 0x38 + 0x48 + 0x30: 0}
    proc = SynthProcess(pid=52, name="gui.exe")
    image = bytearray(build_pe(code_bytes(), FUNCS, EXPORTS, "scanrules.dll"))
    proc.map(BASE, bytes(image), "R-X", RegionKind.IMAGE, PATH)
    proc.add_module(Module(BASE, 0x6000, PATH))
    proc.map(NTDLL, ntdll_bytes(), "R-X", RegionKind.IMAGE, NTDLL_PATH)
    proc.add_module(Module(NTDLL, 0x6000, NTDLL_PATH))
    proc.map(STACK, bytes(0x3000), "RW-", RegionKind.PRIVATE)
    for address, value in slots.items():
        proc.write_u64(address, value)
    thread = ThreadInfo(tid=53, registers={"rip": BASE + STUB + 0xA, "rsp": rsp, "rbx": 0},
                        stack_base=rsp + 0x400, stack_limit=STACK)
    stack = walk_thread(ProcessContext(proc, WalkOptions(), ImageCache()), thread)
    addresses = [f.address for f in stack.frames]
    assert addresses[:3] == [BASE + STUB + 0xA, ra_dispatcher, RA_STUB]
    assert stack.frames[2].method is FoundBy.SCANNED and stack.frames[2].call_consistent is None
    assert addresses[3:] == [RA_WORKER, RA_NOUNWIND]


def test_a_function_start_is_worked_out_once_per_process_and_address(monkeypatch):
    """The threads of a process share their return addresses: the second walk over the same frames
    finds every function start already known, and reads the same stack."""
    from callstack_forensics.engine import consistency

    worked_out = []
    original = consistency._function_start
    monkeypatch.setattr(consistency, "_function_start",
                        lambda ctx, lookup: worked_out.append(lookup) or original(ctx, lookup))
    proc = SynthProcess(pid=50, name="stale.exe")
    image = bytearray(build_pe(code_bytes(), FUNCS, EXPORTS, "scanrules.dll"))
    proc.map(BASE, bytes(image), "R-X", RegionKind.IMAGE, PATH)
    proc.add_module(Module(BASE, 0x6000, PATH))
    proc.map(STACK, bytes(0x3000), "RW-", RegionKind.PRIVATE)
    for address, value in chain({}).items():
        proc.write_u64(address, value)
    ctx = ProcessContext(proc, WalkOptions(), ImageCache())
    stacks = [walk_thread(ctx, ThreadInfo(tid=tid, registers={"rip": BASE + STUB + 0xA, "rsp": RSP0, "rbx": 0},
                                          stack_base=RSP0 + 0x400, stack_limit=STACK)) for tid in (51, 52)]
    assert [f.address for f in stacks[0].frames] == [f.address for f in stacks[1].frames] == TRUE_CHAIN
    assert [f.call_consistent for f in stacks[0].frames] == [f.call_consistent for f in stacks[1].frames]
    assert worked_out and len(worked_out) == len(set(worked_out))
    assert set(ctx.function_starts) == set(worked_out)


def test_return_checks_and_first_instructions_are_worked_out_once_per_process_and_address(monkeypatch):
    """A second thread over the same frames asks nothing new of the bytes: what a value is as a
    return address, and the instruction after each call (the call-gadget check), are kept per
    process, and the two threads still get the same stacks and verdicts."""
    asked, decoded = [], []  # values return_check looked up (a scan asks code_state of every slot itself)
    code_state = ProcessContext.code_state

    def counted(self, address):
        if sys._getframe(1).f_code.co_name == "return_check":
            asked.append(address)
        return code_state(self, address)

    monkeypatch.setattr(ProcessContext, "code_state", counted)
    proc = SynthProcess(pid=60, name="again.exe")
    proc.map(BASE, bytes(build_pe(code_bytes(), FUNCS, EXPORTS, "scanrules.dll")), "R-X", RegionKind.IMAGE, PATH)
    proc.add_module(Module(BASE, 0x6000, PATH))
    proc.map(STACK, bytes(0x3000), "RW-", RegionKind.PRIVATE)
    for address, value in chain({}).items():
        proc.write_u64(address, value)
    ctx = ProcessContext(proc, WalkOptions(), ImageCache())
    first_instruction = ctx.decoder64.first_instruction
    monkeypatch.setattr(ctx.decoder64, "first_instruction",
                        lambda code, address: decoded.append(address) or first_instruction(code, address))
    stacks = []
    for tid in (61, 62):
        stacks.append(walk_thread(ctx, ThreadInfo(tid=tid, registers={"rip": BASE + STUB + 0xA, "rsp": RSP0, "rbx": 0},
                                                  stack_base=RSP0 + 0x400, stack_limit=STACK,
                                                  start_address=BASE + STUB)))
        if tid == 61:
            after_first = (len(asked), len(decoded))
    assert [f.address for f in stacks[0].frames] == [f.address for f in stacks[1].frames] == TRUE_CHAIN
    assert stacks[0].integrity == stacks[1].integrity
    assert after_first[0] and after_first[1]
    assert (len(asked), len(decoded)) == after_first
    assert len(asked) == len(set(asked))
