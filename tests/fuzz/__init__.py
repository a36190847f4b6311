"""The mutation fuzzer (`make fuzz`): hostile stacks, PEs and unwind records through the engine.

``engine.py`` drives the stack engine directly (parse_image, the unwinder, the walker) with
seeded, reproducible mutations of real material; ``images.py`` (when present) runs mutated
forged memory images through the Volatility plugins. Both report a :class:`counts.FuzzCounts`.
"""
