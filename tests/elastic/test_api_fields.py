"""process.Ext.api: Elastic's names for remote calls, behaviours and the target's name, from a
forged image that holds an API call and from hand-made threads that hold what the image cannot."""

from __future__ import annotations

import struct

from callstack_forensics.engine.stack import ModuleRef
from callstack_forensics.events.syscalls import SyscallTable, SyscallTables
from callstack_forensics.memory import HandleInfo, Module

from ..events.helpers import EXE, PAYLOAD, Proc, api_frames, events_of, frame, only, stack, sys_frame, thread, view
from .conftest import events_of as image_events

PROTECT_RWX = 0x40


def _api(events, pid):
    return [e for e in events if e["event"]["category"] == ["api"] and e["process"]["pid"] == pid]


def test_shellcode_calling_ntdll_itself_is_native_api_on_unbacked_memory(forged):
    (event,) = _api(image_events(forged("shellcode_protect")), 5236)
    api = event["process"]["Ext"]["api"]
    assert event["event"]["action"] == api["name"] == "VirtualProtect"
    assert api["parameters"] == {"address": 0x1C0000, "size": 0x2000, "protection": "RWX"}
    assert api["summary"] == "VirtualProtect( 0x1c0000, 0x2000, RWX )"
    assert api["behaviors"] == ["native_api"]
    assert api["metadata"] == {"target_address_name": "Unbacked"}
    assert event["process"]["thread"]["Ext"]["call_stack_final_user_module"]["name"] == "Unbacked"


def test_a_call_through_kernelbase_claims_no_behaviour(forged):
    (event,) = _api(image_events(forged("jit_protect_near_miss")), 6412)
    api = event["process"]["Ext"]["api"]
    assert api["parameters"]["protection"] == "R-X" and "behaviors" not in api
    assert api["metadata"] == {"target_address_name": "Unbacked"}


class NumberedTables(SyscallTables):
    """The image's ntdll names system call 0x50 NtProtectVirtualMemory (its stub table)."""

    def for_process(self, ctx):
        return SyscallTable({0x50: "NtProtectVirtualMemory"}, ["ntdll.dll"])


def _protect(proc: Proc, handle: int, address: int, frames):
    t = thread(proc, 8, [handle, proc.put(struct.pack("<Q", address)), proc.put(struct.pack("<Q", 0x1000)),
                         PROTECT_RWX, proc.put(bytes(8))], syscall_number=0x50)
    [event] = only(events_of(view(proc, [stack(proc, t, frames)]), tables=NumberedTables()), "api")
    return event["process"]["Ext"]["api"]


def test_remote_calls_take_elastics_remote_names_and_no_local_target():
    proc = Proc()
    proc.handles[0x40] = HandleInfo("Process", None, pid=4120)
    api = _protect(proc, 0x40, 0x25000000, [sys_frame("NtProtectVirtualMemory"), *api_frames("kernelbase.dll!VirtualProtectEx")])
    assert api["name"] == "VirtualProtectEx" and api["behaviors"] == ["cross-process"] and "metadata" not in api
    t = thread(proc, 12, [0x40, proc.put(struct.pack("<Q", 0)), 0, proc.put(struct.pack("<Q", 0x1000)), 0x3000, 0x40])
    assert "native_api" not in api.get("behaviors", [])  # kernelbase called the stub
    [alloc] = only(events_of(view(proc, [stack(proc, t, [sys_frame("NtAllocateVirtualMemory")])])), "api")
    assert alloc["process"]["Ext"]["api"]["name"] == "VirtualAllocEx"
    proc.handles[0x30] = HandleInfo("Section", None, image_section=False)
    t = thread(proc, 16, [0x30, 0x40, proc.put(bytes(8)), 0, 0, 0, proc.put(bytes(8)), 1, 0, 4])
    [mapped] = only(events_of(view(proc, [stack(proc, t, [sys_frame("NtMapViewOfSection")])])), "api")
    assert mapped["process"]["Ext"]["api"]["name"] == "MapViewOfFile2"


def test_local_target_inside_a_module_is_named_by_the_module():
    proc = Proc()
    proc.add_module(Module(EXE, 0x10000, "C:\\Program Files\\App\\app.exe"))
    api = _protect(proc, 0xFFFFFFFFFFFFFFFF, EXE + 0x1000,
                   [sys_frame("NtProtectVirtualMemory"), *api_frames("kernelbase.dll!VirtualProtect")])
    assert api["name"] == "VirtualProtect"
    assert api["metadata"] == {"target_address_name": "app.exe", "target_address_path": "c:\\program files\\app\\app.exe"}
    unknown = _protect(proc, 0xFFFFFFFFFFFFFFFF, 0x7000_0000, [sys_frame("NtProtectVirtualMemory")])
    assert "metadata" not in unknown  # an address in no region: nothing said


def test_a_syscall_from_the_programs_own_stub_is_direct():
    proc = Proc()
    proc.add_module(Module(EXE, 0x10000, "C:\\Program Files\\App\\app.exe"))
    own = frame(0, "c:\\program files\\app\\app.exe+0x1014", ("app.exe", EXE))
    own.module = ModuleRef("app.exe", "C:\\Program Files\\App\\app.exe", EXE)  # the stub form, outside Windows
    api = _protect(proc, 0xFFFFFFFFFFFFFFFF, PAYLOAD, [own, *api_frames("Unbacked")])
    assert api["behaviors"] == ["direct_syscall"]
    genuine = _protect(proc, 0xFFFFFFFFFFFFFFFF, PAYLOAD, [sys_frame("NtProtectVirtualMemory"), *api_frames("Unbacked")])
    assert genuine["behaviors"] == ["native_api"]  # ntdll's stub, called by unbacked code


def test_a_protect_on_ntdlls_code_names_its_module(forged):
    (event,) = _api(image_events(forged("etw_patch")), 7020)
    api = event["process"]["Ext"]["api"]
    assert api["metadata"] == {"target_address_name": "ntdll.dll", "target_address_path": "c:\\windows\\system32\\ntdll.dll"}
    assert api["parameters"]["protection"] == "RWX" and "behaviors" not in api


def test_every_frame_says_its_provenance_cannot_be_told(forged):
    (event,) = _api(image_events(forged("etw_patch")), 7020)
    frames = event["process"]["thread"]["Ext"]["call_stack"]
    assert frames and {f["protection_provenance"] for f in frames} == {"Undetermined"}
