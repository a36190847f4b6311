"""A thread row's state and wait reason are Volatility's own names for the thread's values, asked of
Volatility once per image and pair of values."""

from __future__ import annotations

from volatility3.plugins.windows import threads

from callstack_forensics.volatility.session import VolatilitySettings, open_image


def test_state_and_wait_reason_are_volatilitys_names(scenario_image):
    image = scenario_image("sleep_obfuscation_contexts")
    source = open_image(image, VolatilitySettings(symbols=[image.parent / "symbols"]), lambda *_: None)
    rows = pairs = 0
    for opened in source.processes():
        memory = opened.memory
        if memory is None:
            continue
        ours = {t.tid: (t.state, t.wait_reason) for t in memory.threads()}
        for ethread in threads.Threads.list_threads(memory._context, memory._kernel_module_name, memory._proc):
            tcb = ethread.Tcb
            assert ours[int(ethread.Cid.UniqueThread)] == (tcb.get_state(), tcb.get_wait_reason())
            rows += 1
        pairs = len(memory._state_name_table)
    assert rows > 20
    assert 1 < pairs < rows, "one entry per pair of values, shared by every process of the image"


def test_every_real_kernel_layout_unpacks_its_members_in_one_piece(benign_real_isf_image):
    """On each real kernel's symbol table the thread row, the trap frame and both VAD kinds take the
    one-unpack path of their member groups (none falls back member by member), and the rows still
    equal Volatility's own."""
    from callstack_forensics.volatility.rawstructs import VadLayout

    image = benign_real_isf_image
    source = open_image(image, VolatilitySettings(symbols=[image.parent / "symbols"]), lambda *_: None)
    memory = next(o.memory for o in source.processes() if o.memory is not None and o.memory.threads())
    layout = memory._thread_layout
    assert layout.row._struct is not None and layout.trap_registers._struct is not None
    root = memory._proc.get_vad_root()
    vads = VadLayout.resolve(memory._context, memory._kernel.symbol_table_name,
                             root.vol.type_name.split("!")[-1], memory._kernel_layer.address_mask)
    assert vads.short._members._struct is not None and vads.long._members._struct is not None
    ours = {t.tid: (t.state, t.wait_reason, t.start_address) for t in memory.threads()}
    for ethread in threads.Threads.list_threads(memory._context, memory._kernel_module_name, memory._proc):
        tcb = ethread.Tcb
        assert ours[int(ethread.Cid.UniqueThread)] == (tcb.get_state(), tcb.get_wait_reason(), int(ethread.StartAddress))
