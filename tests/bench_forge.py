"""The forge's figures for `make bench`: how long each scenario takes to build and how much disk it takes.

An image is a machine's whole RAM (4 GiB by default) written sparse, so its apparent size says
nothing about its cost: the figures are the blocks it really occupies and the build's wall time,
per scenario on the default layout, against the targets the forge keeps (measurements, not tests).
"""

from __future__ import annotations

import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from callstack_forensics.forge import forge

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "samples" / "scenarios").glob("*.toml"))
DISK_TARGET_MIB = 16
BUILD_TARGET_S = 5.0


@dataclass(frozen=True)
class Built:
    scenario: str
    seconds: float
    apparent: int
    disk: int


def build_all(folder: Path) -> list[Built]:
    """Forge every scenario once into ``folder`` (emptied first); time and size each image."""
    shutil.rmtree(folder, ignore_errors=True)
    out = []
    for scenario in SCENARIOS:
        started = time.perf_counter()
        result = forge(scenario, folder / f"{scenario.stem}.raw")
        seconds = time.perf_counter() - started
        stat = result.image.stat()
        out.append(Built(scenario.stem, seconds, stat.st_size, stat.st_blocks * 512))
    return out


def forge_section(built: list[Built]) -> tuple[list[str], list[str]]:
    """The per-scenario table and the target rows."""
    mib = 1024 * 1024
    worst_disk = max(b.disk for b in built)
    worst_build = max(b.seconds for b in built)
    lines = [
        "## The forge",
        "",
        f"Every scenario built once on the default layout (Windows 10 22H2) with the default RAM: apparent size "
        f"(the machine's RAM), blocks on disk (the file is sparse), build wall time (median "
        f"{statistics.median(b.seconds for b in built):.2f} s, total {sum(b.seconds for b in built):.1f} s for "
        f"{len(built)} images, {sum(b.disk for b in built) / mib:.0f} MiB of disk).",
        "",
        "| scenario | apparent | on disk | build |",
        "|---|---|---|---|",
        *[f"| {b.scenario} | {b.apparent / mib:,.0f} MiB | {b.disk / mib:.1f} MiB | {b.seconds:.2f} s |" for b in built],
        "",
    ]
    targets = [
        f"| forged image <= {DISK_TARGET_MIB} MiB on disk | largest {worst_disk / mib:.1f} MiB | "
        f"{'**met**' if worst_disk <= DISK_TARGET_MIB * mib else '**not met**'} |",
        f"| forged image built in <= {BUILD_TARGET_S:.0f} s | slowest {worst_build:.2f} s | "
        f"{'**met**' if worst_build <= BUILD_TARGET_S else '**not met**'} |",
    ]
    return lines, targets


if __name__ == "__main__":
    lines, targets = forge_section(build_all(ROOT / "out" / "bench" / "forge"))
    print("\n".join(targets + [""] + lines))
