"""Volatility 3 plugins of callstack-forensics: ``callstacks.stacks``, ``callstacks.events``, ``callstacks.detect``.

Give Volatility this folder's parent: ``vol -p plugins ...`` in a checkout, or
``vol -p "$(callstack-forensics plugins-path)" ...`` for an installed copy. The classes
here only declare requirements and columns; the work is done by the ``callstack_forensics``
package (``callstack_forensics.volatility`` holds everything that touches Volatility).
"""
