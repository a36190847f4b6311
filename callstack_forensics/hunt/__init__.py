"""Implant hunting over what a snapshot holds beyond the stacks themselves.

``contexts``: CONTEXT records a sleep-obfuscating implant leaves in private memory (Patriot's
method); ``prevalence``: how common each stack shape is in the image (the article's question,
"is this normal here?"). The per-thread stack verdict lives with the engine
(:mod:`callstack_forensics.engine.integrity`): it needs nothing but the walk.
"""
