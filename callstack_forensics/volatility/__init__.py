"""Volatility 3 on the stack engine's side: the only subpackage (with ``plugins/``) that imports Volatility.

- :mod:`.adapter` (and :mod:`.rawstructs`): an ``_EPROCESS`` as the engine's ``ProcessMemory``;
- :mod:`.source`: an image's processes as the core's process source;
- :mod:`.session`: opening an image in-process, as ``vol`` would, for ``callstack-forensics analyze``;
- :mod:`.requirements`: what the plugins and the session ask of Volatility;
- :mod:`.collect`: the events of an image for the ``callstacks.events``/``detect`` plugins.

The Volatility plugin classes themselves stay in the plugin folder Volatility loads
(``callstack-forensics plugins-path``); they are thin and import from here. Nothing in
this ``__init__`` imports Volatility, so the rest of the package never pays for it.
"""
