"""Which layer of a call stack each frame belongs to, the way Elastic colours stacks.

Elastic's "how you can use call stacks" reads every stack in three parts: at the bottom the
thread start the operating system does for every thread (green: ``ntdll!RtlUserThreadStart``,
``kernel32!BaseThreadInitThunk``), at the top the Win32 and Native API layer the operation
passes through on its way to the kernel (blue: kernelbase, kernel32, ntdll...), and in between
the program's own code (red), which is what explains the event. The case report colours frames
the same way so a reader sees at once where the interesting part of a stack is.

The layers are positional, not per module: ``user32.dll`` in the middle of a GUI stack or
``ntdll!RtlpProcessReflectionStartup`` above the thread start is the program's doing (it is
what the thread was started to run), so only the contiguous run of API frames from the top is
the API layer. That run is exactly the frames above ``call_stack_final_user_module`` (same
module set, :data:`..summary.WINDOWS_API_MODULES`), with one more condition: the module must
sit in a Windows system folder. A ``kernel32.dll`` loaded from ``C:\\Users\\Public`` is not the
Win32 API, and an exported ``BaseThreadInitThunk`` in a rogue DLL is not the OS's thread start
(the LdrpKernel32 override), so both read as program code.

A frame the stack scan found (no unwind data led to it) in a module of a Windows system folder
is labelled as such, not as program code: the scan proves a return address into Windows code,
not what called it.

Unbacked and RWX frames are flags beside the layer, not layers: shellcode is program code, and
the report must make it stand out whatever layer it sits in.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Sequence

from ..engine.stack import Frame
from ..engine.summary import WINDOWS_API_MODULES
from ..engine.system import system_module_name

# The Native API: system-call stubs (ntdll, win32u) and the WOW64 layer that turns a 32-bit
# call into a 64-bit one on its way to those stubs.
NATIVE_API_MODULES = frozenset(
    {"ntdll.dll", "win32u.dll", "wow64.dll", "wow64cpu.dll", "wow64win.dll", "wow64base.dll", "wow64con.dll"}
)
WIN32_API_MODULES = WINDOWS_API_MODULES - NATIVE_API_MODULES

# Functions of the OS's thread start, and the module that must hold each.
THREAD_START_FUNCTIONS = {"rtluserthreadstart": "ntdll.dll", "basethreadinitthunk": "kernel32.dll"}

# x86 decorations: _stdcall@N, @fastcall@N (kernel32's @BaseThreadInitThunk@12), __cdecl.
_DECORATION = re.compile(r"^[_@]+|@\d+$")


class Layer(str, enum.Enum):
    """A frame's part of the stack; the value is the CSS class the report uses."""

    THREAD_START = "thread-start"
    PROGRAM = "program"
    WIN32_API = "win32-api"
    NATIVE_API = "native-api"
    WINDOWS_SCANNED = "windows-scanned"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Layer.THREAD_START: "thread start (OS)",
    Layer.PROGRAM: "program code",
    Layer.WIN32_API: "Win32 API",
    Layer.NATIVE_API: "Native API",
    Layer.WINDOWS_SCANNED: "Windows module (scanned)",
}


@dataclass(frozen=True, slots=True)
class FrameClass:
    """How the report draws one frame: its layer, and the two flags that must stand out."""

    layer: Layer
    unbacked: bool = False
    rwx: bool = False


def classify_stack(frames: Sequence[Frame]) -> list[FrameClass]:
    """One :class:`FrameClass` per frame, in the frames' order (most recent first)."""
    layers = [Layer.PROGRAM] * len(frames)
    bottom = len(frames)
    while bottom > 0 and _is_thread_start(frames[bottom - 1]):
        bottom -= 1
        layers[bottom] = Layer.THREAD_START
    for i in range(bottom):
        api = _api_layer(frames[i])
        if api is None:
            break
        layers[i] = api
    for i, frame in enumerate(frames):
        if layers[i] is Layer.PROGRAM and frame.method.value == "scanned" and system_module_name(frame) is not None:
            # a return address the scan found in a Windows module: code of Windows, not of the
            # program, though where it sits in the call chain is not known
            layers[i] = Layer.WINDOWS_SCANNED
    return [FrameClass(layer, frame.unbacked, is_writable_executable(frame.protection))
            for layer, frame in zip(layers, frames)]


def is_writable_executable(protection: str) -> bool:
    """``RWX`` (and the copy-on-write ``RCX``), with or without modifiers such as ``|GUARD``."""
    base = protection.split("|", 1)[0].upper()
    return len(base) == 3 and base[1] in "WC" and base[2] == "X"


def _api_layer(frame: Frame) -> Layer | None:
    name = system_module_name(frame)
    if name in NATIVE_API_MODULES:
        return Layer.NATIVE_API
    if name in WIN32_API_MODULES:
        return Layer.WIN32_API
    return None


def _is_thread_start(frame: Frame) -> bool:
    name = system_module_name(frame)
    function = _function(frame.symbol_info)
    return name is not None and THREAD_START_FUNCTIONS.get(function) == name


def _function(symbol_info: str) -> str:
    """``c:\\...\\ntdll.dll!_RtlUserThreadStart@8+0x1e`` -> ``rtluserthreadstart``."""
    if "!" not in symbol_info:
        return ""
    name = symbol_info.rsplit("!", 1)[1].split("+", 1)[0]
    return _DECORATION.sub("", name).lower()
