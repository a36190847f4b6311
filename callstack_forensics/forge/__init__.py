"""The image forge: raw Windows x64 memory images that stock Volatility 3 reads, built from scenario files.

``forge(scenario_path, out_path, isf_path=None)`` is the API; ``callstack-forensics forge`` and
``python -m callstack_forensics.forge`` the commands. The forge never imports Volatility: it reads
kernel symbol tables (ISF JSON) itself and writes every structure through them.
"""

from .builder import ForgeResult, forge
from .layout import LayoutError
from .modules import ModuleError
from .physmem import PhysicalMemoryFull, RamSizeError
from .scenario import ScenarioError, load_scenario
from .stacks import ComposeError

FORGE_ERRORS = (ScenarioError, LayoutError, ModuleError, ComposeError, RamSizeError, PhysicalMemoryFull)

__all__ = ["forge", "ForgeResult", "load_scenario", "FORGE_ERRORS", "ScenarioError", "LayoutError", "ModuleError",
           "ComposeError", "RamSizeError", "PhysicalMemoryFull"]
