"""How winedbg's frames become the reference (truth.py): inline frames fold, recursion does not.

Pure: frames as winedbg prints them, no Wine needed.
"""

from __future__ import annotations

from .capture import parse_backtrace
from .truth import function_name, physical_frames

INLINE = """\
  3 0x00000140001d9b cf_ready_and_wait+0x30f(prog=<internal error>) [common.h:224] in fp_chain (0x0000000021fd00)
  4 0x00000140001d9b main+0x3f9() [fp_chain.c:130] in fp_chain (0x0000000021fd00)
  5 0x000001400013ae in fp_chain (+0x13ae) (0x00000000c812c0)
  8 0x0000017005dca8 __wine_pop_frame(entry=0, arg=0) [exception.h:277] in ntdll (0000000000000000)
  9 0x0000017005dca8 RtlUserThreadStart+0x88(entry=0, arg=0) [thread.c:285] in ntdll (0000000000000000)
"""

RECURSION = """\
  2 0x00000140001630 recurse+0x4f(n=0) [recursion.c:25] in recursion (0000000000000000)
  3 0x000001400015fb recurse+0x1a(n=1) [recursion.c:23] in recursion (0000000000000000)
  4 0x000001400015fb recurse+0x1a(n=2) [recursion.c:23] in recursion (0000000000000000)
  5 0x000001400015fb recurse+0x1a(n=3) [recursion.c:23] in recursion (0000000000000000)
  6 0x00000140001640 self_main+0xe(arg=0) [recursion.c:52] in recursion (0000000000000000)
"""

NAMELESS = """\
  1 0x00000140001d0f in nounwind (+0x1d0f) (0000000000000000)
  2 0x00000140001d0f in nounwind (+0x1d0f) (0000000000000000)
"""


def test_inline_frames_fold_into_their_physical_frame():
    frames = physical_frames(parse_backtrace(INLINE))
    assert [f["address"] for f in frames] == [0x140001D9B, 0x1400013AE, 0x17005DCA8]
    assert frames[0]["text"].startswith("cf_ready_and_wait+0x30f") and " | main+0x3f9" in frames[0]["text"]
    assert " | RtlUserThreadStart+0x88" in frames[2]["text"]


def test_recursion_keeps_one_frame_per_level():
    frames = physical_frames(parse_backtrace(RECURSION))
    assert [f["address"] for f in frames] == [0x140001630, *[0x1400015FB] * 3, 0x140001640]


def test_frames_without_names_never_fold():
    assert len(physical_frames(parse_backtrace(NAMELESS))) == 2


def test_function_name():
    assert function_name("Sleep+0x24(timeout=<internal error>) [sync.c:57] in kernelbase") == "Sleep"
    assert function_name("__wine_pop_frame(entry=0) [exception.h:277] in ntdll") == "__wine_pop_frame"
    assert function_name("in ntdll (+0xebe4) (0x000000fffffff4)") is None
