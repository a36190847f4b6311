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
