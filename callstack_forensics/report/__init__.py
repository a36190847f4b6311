"""The HTML case report: one self-contained file a responder puts in the case folder.

``render_report(analysis)`` gives the HTML; ``callstack-forensics report IMAGE -o case.html``
writes it. ``layers`` says which part of a stack a frame belongs to (thread start, program code,
Win32 / Native API), the way Elastic colours call stacks.
"""

from .layers import FrameClass, Layer, classify_stack
from .render import render_report

__all__ = ["FrameClass", "Layer", "classify_stack", "render_report"]
