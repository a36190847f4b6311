"""callstack-forensics: rebuild user-mode call stacks from memory images and detect what they reveal.

The package is the engine; it knows nothing of Volatility. Memory sources (a Volatility process
layer, a minidump) plug in through :mod:`callstack_forensics.memory`.
"""

__version__ = "0.1.0"
