"""The stack engine: from a thread's context and its process's memory to Elastic's frames.

``pe`` (mapped images: sections, exports, ``.pdata``), ``modules`` (each image parsed
once per memory image), ``unwind`` (x64 UNWIND_INFO, as RtlVirtualUnwind), ``callsite``
(the call before a return address), ``scan`` (the validated fallback scan), ``wow64``
(32-bit stacks and the WOW64 splice), ``walker`` (a thread's whole walk), ``decorate``
and ``symbols`` (a frame's region, protection and ``symbol_info``), ``summary`` (the
per-stack fields) and ``stack`` (the result model). It reads memory only through
:mod:`callstack_forensics.memory` and knows nothing of Volatility.
"""
