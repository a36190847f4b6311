"""Volatility 3 plugins of callstack-forensics: ``callstacks.stacks``, ``callstacks.events``, ``callstacks.detect``.

Use them with ``vol -p plugins callstacks.stacks -f mem.raw``. They are thin: the work is
done by the ``callstack_forensics`` package through :mod:`.adapter`.
"""
