"""The whole job on one source: open it, rebuild every stack, build the events, run the rules.

Front ends (the CLI's ``analyze``/``report``/``events``, tests) hand a :class:`Source` to
:func:`analyze` and get an :class:`Analysis` back; the Volatility half of opening a memory
image lives in ``callstack_forensics/volatility/session.py``, so nothing here imports Volatility.
"""

from .model import Analysis, Finding, MatchedFrame, OpenedProcess, ProcessResult, Source, SourceInfo
from .progress import NullProgress, Progress
from .runner import AnalysisOptions, analyze

__all__ = [
    "Analysis",
    "AnalysisOptions",
    "Finding",
    "MatchedFrame",
    "NullProgress",
    "OpenedProcess",
    "ProcessResult",
    "Progress",
    "Source",
    "SourceInfo",
    "analyze",
]
