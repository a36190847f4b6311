"""call_stack_summary and final user module, per ../shared/docs/callstack-fields.md."""

from callstack_forensics.engine.stack import FoundBy, Frame, ModuleRef
from callstack_forensics.engine.summary import summarize


def frame(i, name=None, symbol=None):
    mod = ModuleRef(name, f"C:\\Windows\\System32\\{name}", 0x1000 * (i + 1)) if name else None
    return Frame(i, 0x1000 + i, FoundBy.UNWOUND, symbol_info=symbol or (f"{name}+0x10" if name else "Unbacked"), module=mod)


def test_summary_collapses_consecutive_repeats_and_names_unbacked():
    frames = [frame(0, "ntdll.dll"), frame(1, "ntdll.dll"), frame(2, "KernelBase.dll"), frame(3), frame(4), frame(5, "kernel32.dll")]
    s = summarize(frames)
    assert s.summary == "ntdll.dll|kernelbase.dll|Unbacked|kernel32.dll"
    assert s.contains_unbacked is True
    assert s.final_user_module.name == "Unbacked"


def test_final_user_module_skips_windows_api_layer():
    frames = [frame(0, "ntdll.dll"), frame(1, "kernelbase.dll"), frame(2, "evil.dll"), frame(3, "kernel32.dll")]
    s = summarize(frames)
    assert s.contains_unbacked is False
    assert s.final_user_module.name == "evil.dll"
    assert s.final_user_module.to_ecs()["path"] == "c:\\windows\\system32\\evil.dll"


def test_unknown_frame_is_named_unknown():
    frames = [frame(0, "ntdll.dll"), Frame(1, 0x5, FoundBy.SCANNED, symbol_info="Unknown")]
    assert summarize(frames).summary == "ntdll.dll|Unknown"
