"""What the callstacks plugins ask of Volatility, in one place.

The plugins declare these requirements and the CLI's in-process image opener asks the
automagic for the same ones, so ``callstack-forensics analyze IMAGE`` and ``vol ...
callstacks.detect`` set an image up identically.
"""

from __future__ import annotations

from typing import Any

from volatility3.framework import interfaces
from volatility3.framework.configuration import requirements
from volatility3.plugins.windows import handles, info, pslist, threads

from ..engine.context import WalkOptions

Requirements = list[interfaces.configuration.RequirementInterface]


def process_requirements() -> Requirements:
    """What every callstacks plugin needs to open processes and walk their threads."""
    return [
        requirements.ModuleRequirement(name="kernel", description="Windows kernel", architectures=["Intel64"]),
        requirements.ListRequirement(name="pid", element_type=int, description="Process IDs to include", optional=True),
        requirements.IntRequirement(name="max-frames", description="Frames per stack at most", default=256, optional=True),
        requirements.IntRequirement(name="max-stack-bytes", description="Stack bytes read per thread at most",
                                    default=WalkOptions().max_stack_bytes, optional=True),
        requirements.VersionRequirement(name="pslist", component=pslist.PsList, version=(3, 0, 0)),
        requirements.VersionRequirement(name="threads", component=threads.Threads, version=(3, 0, 0)),
    ]


def event_requirements() -> Requirements:
    """What ``callstacks.events`` and ``callstacks.detect`` need on top: handles and the kernel's info."""
    return process_requirements() + [
        requirements.BooleanRequirement(name="no-yara", description="Do not scan unbacked executable memory with YARA",
                                        default=False, optional=True),
        requirements.VersionRequirement(name="handles", component=handles.Handles, version=(4, 0, 0)),
        requirements.VersionRequirement(name="info", component=info.Info, version=(2, 0, 0)),
    ]


def walk_options(config: Any) -> WalkOptions:
    """The user's limits from ``--max-frames`` and ``--max-stack-bytes``; unset keeps the default."""
    defaults = WalkOptions()
    return WalkOptions(max_frames=int(config.get("max-frames") or defaults.max_frames),
                       max_stack_bytes=int(config.get("max-stack-bytes") or defaults.max_stack_bytes))
