"""call_stack_final_user_module: signature from the module's cached signing level, provenance
Undetermined, Kernel for system threads; the parent's code_signature; absent without evidence."""

from __future__ import annotations

from callstack_forensics.events.final_module import complete_final_module, kernel_final_module, modules_by_path
from callstack_forensics.memory import Module, ThreadInfo

from .conftest import process_event


def _finals(events):
    for event in events:
        final = event.get("process", {}).get("thread", {}).get("Ext", {}).get("call_stack_final_user_module")
        if final:
            yield event, final


def test_final_user_module_carries_the_signing_level_and_undetermined_provenance(benign_events):
    user = [(e, f) for e, f in _finals(benign_events) if f["name"] != "Kernel"]
    assert user and all(f["protection_provenance"] == "Undetermined" for _, f in user)
    signed = [f for _, f in user if "code_signature" in f]
    assert signed and all(isinstance(f["code_signature"], list) for f in signed)
    assert {f["code_signature"][0]["Ext"]["signing_level"] for f in signed} <= {"Windows", "Microsoft", "WindowsTcb",
                                                                               "Authenticode", "Antimalware", "Store"}


def test_system_threads_act_for_the_kernel(benign_events):
    kernel = [e for e, f in _finals(benign_events) if f["name"] == "Kernel"]
    assert kernel and all(e["process"]["pid"] in (4, 108) for e in kernel)
    assert all("call_stack" not in e["process"]["thread"]["Ext"] for e in kernel)


def test_parent_code_signature_from_the_parents_signing_level(benign_events):
    services = process_event(benign_events, "services.exe")
    assert services["process"]["parent"]["code_signature"]["trusted"] is True


def test_no_signing_level_means_no_code_signature_and_user_threads_are_not_kernel():
    ext = {"call_stack_final_user_module": {"name": "a.dll", "path": "c:\\a.dll"}}
    complete_final_module(ext, modules_by_path([Module(0x1000, 0x1000, "C:\\a.dll", signing_level=0)]))
    assert "code_signature" not in ext["call_stack_final_user_module"]
    assert ext["call_stack_final_user_module"]["protection_provenance"] == "Undetermined"
    assert kernel_final_module(ThreadInfo(8, teb=0x7FF000, note=None)) is None
    assert kernel_final_module(ThreadInfo(8, note="TEB not present: stack bounds unknown")) is None
    assert kernel_final_module(ThreadInfo(8, note="system thread: no TEB, no user-mode context")) == {"name": "Kernel"}


def test_a_path_listed_twice_takes_the_first_module_listed():
    """The index keeps the loader's first entry for a path, as a search of the list in order would."""
    by_path = modules_by_path([Module(0x1000, 0x1000, "C:\\A.dll", signing_level=12),
                               Module(0x9000, 0x1000, "c:\\a.dll", signing_level=0)])
    assert by_path["c:\\a.dll"].base == 0x1000
    ext = {"call_stack_final_user_module": {"name": "a.dll", "path": "c:\\a.dll"}}
    complete_final_module(ext, by_path)
    assert ext["call_stack_final_user_module"]["code_signature"]
