"""Where an address points, in the words the call-stack fields use.

Every implant check names addresses (a breakpoint's, an APC routine's, a hook's jump
target) the way a frame's ``symbol_info`` names a return address, so a responder reads
them like the stacks and a rule can match them with the same patterns (``Unbacked*``,
``*amsi.dll!AmsiScanBuffer*``). The engine's symbolizer does the naming; this adds the
export an address is in and the memory it lies in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...engine.context import ProcessContext
from ...engine.stack import UNBACKED, UNKNOWN
from ...engine.symbols import export_for, symbolize
from ...memory import RegionKind


@dataclass(frozen=True, slots=True)
class Location:
    """An address, named: ``symbol_info`` as frames spell it, its module (lower-case file name,
    or ``Unbacked``/``Unknown``), the export whose function holds it and the offset into it,
    and the protection and kind of the memory it lies in (``Unknown`` when not recorded)."""

    address: int
    symbol_info: str
    module: str
    module_path: str | None
    export: str | None
    export_offset: int | None
    protection: str
    region_type: str
    code: bool | None  # the address lies in executable memory (None: the source cannot tell)

    @property
    def unbacked(self) -> bool:
        return self.module == UNBACKED

    def to_ecs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"address": f"{self.address:#x}", "symbol_info": self.symbol_info,
                               "module": self.module, "protection": self.protection,
                               "region_type": self.region_type}
        if self.module_path:
            out["module_path"] = self.module_path
        if self.export is not None:
            out["export"] = self.export
            out["export_offset"] = self.export_offset
        return out


def locate(ctx: ProcessContext, address: int) -> Location:
    """Name ``address`` in this process (never raises for memory the source lacks)."""
    module = ctx.module(address)
    region = ctx.region(address)
    image = ctx.image_of(module) if module is not None else None
    symbol = symbolize(address, address, module, image, region)
    export = export_for(image, address - module.base) if image is not None and module is not None else None
    if module is not None:
        name, path = module.name.lower(), module.path.lower()
    elif symbol == UNBACKED:
        name, path = UNBACKED, None
    else:
        name, path = UNKNOWN, None
    return Location(
        address=address,
        symbol_info=symbol,
        module=name,
        module_path=path,
        export=export.name if export is not None else None,
        export_offset=(address - module.base - export.rva) if export is not None and module is not None else None,
        protection=region.protection if region is not None else "Unknown",
        region_type=_region_type(region.kind if region is not None else None, module is not None),
        code=ctx.code_state(address),
    )


def _region_type(kind: RegionKind | None, in_module: bool) -> str:
    if kind is not None and kind is not RegionKind.UNKNOWN:
        return kind.value
    return "image" if in_module else "unknown"
