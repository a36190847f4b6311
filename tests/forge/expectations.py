"""What Volatility must show for a scenario, derived from the scenario file itself.

Every fact the scenario states (pids, parents, names, command lines, sessions, WOW64, thread ids,
modules, regions with their protections and files) is checked as stated; values the scenario
leaves to the forge (addresses it did not fix, default paths) come from the forge's plan for the
same image, so the tests still compare Volatility with the scenario, never with an earlier output.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from callstack_forensics.forge import ForgeResult
from callstack_forensics.forge.plan import ProcessPlan, VadPlan
from callstack_forensics.forge.scenario import ProcessSpec, RegionSpec, Scenario
from callstack_forensics.forge.userspace import EPOCH
from callstack_forensics.forge.vad import MM_PROTECTION, nt_file_name

PAGE_NAMES = {"---": "PAGE_NOACCESS", "R--": "PAGE_READONLY", "--X": "PAGE_EXECUTE", "R-X": "PAGE_EXECUTE_READ",
              "RW-": "PAGE_READWRITE", "RC-": "PAGE_WRITECOPY", "RWX": "PAGE_EXECUTE_READWRITE",
              "RCX": "PAGE_EXECUTE_WRITECOPY"}
MM_TO_PAGE = {index: PAGE_NAMES[name] for name, index in MM_PROTECTION.items()}


def iso(filetime: int) -> str:
    when = EPOCH + dt.timedelta(microseconds=filetime // 10)
    return when.isoformat()


@dataclass(frozen=True)
class Expected:
    scenario: Scenario
    result: ForgeResult

    def spec(self, pid: int) -> ProcessSpec:
        return next(p for p in self.scenario.processes if p.pid == pid)

    def plan(self, pid: int) -> ProcessPlan:
        return self.result.process(pid)

    # ---- processes ----------------------------------------------------------------

    def thread_count(self, spec: ProcessSpec) -> int:
        return spec.system_threads if spec.kernel else sum(t.count for t in spec.threads)

    def command_line(self, spec: ProcessSpec) -> str | None:
        if spec.kernel:
            return None
        if spec.command_line is not None:
            return spec.command_line
        return self.plan(spec.pid).command_line

    def image_path(self, spec: ProcessSpec) -> str | None:
        if spec.kernel:
            return None
        return spec.path or self.plan(spec.pid).image_path

    def created(self, spec: ProcessSpec) -> str:
        if spec.created is not None:
            return spec.created.isoformat()
        return iso(self.plan(spec.pid).create_time)

    def session(self, spec: ProcessSpec) -> int | None:
        """The scenario's session; a fork clone's defaults to its parent's."""
        if spec.session is None and spec.fork_of is not None:
            return self.session(self.spec(spec.fork_of))
        return spec.session

    def pslist_rows(self) -> set[tuple]:
        return {(s.pid, s.ppid, s.name[:14], self.thread_count(s), self.session(s),
                 s.wow64 or self._inherits_wow64(s), self.created(s)) for s in self.scenario.processes}

    def _inherits_wow64(self, spec: ProcessSpec) -> bool:
        return bool(spec.fork_of) and self.plan(spec.pid).wow64

    # ---- threads --------------------------------------------------------------------

    def tids(self) -> set[tuple[int, int]]:
        out = set()
        for spec in self.scenario.processes:
            if spec.kernel:
                out |= {(spec.pid, t.tid) for t in self.plan(spec.pid).threads}
            for thread in spec.threads:
                out |= {(spec.pid, thread.tid + 4 * n) for n in range(thread.count)}
        return out

    # ---- memory -------------------------------------------------------------------------

    def region_vad(self, spec: ProcessSpec, region: RegionSpec) -> VadPlan:
        plan = self.plan(spec.pid)
        vad = next(v for v in plan.vads if v.label == region.name)
        if region.address is not None:
            assert vad.start == region.address, (region.name, hex(vad.start))
        return vad

    def region_rows(self, spec: ProcessSpec) -> set[tuple]:
        """(start, end, protection, private, file) of every scenario region, as vadinfo prints them."""
        rows = set()
        for region in self._regions(spec):
            vad = self.region_vad(spec, region)
            start = region.address if region.address is not None else vad.start
            rows.add((start, start + region.size - 1, PAGE_NAMES[region.protection],
                      1 if region.kind == "private" else 0,
                      nt_file_name(region.file) if region.file else None))
        return rows

    def _regions(self, spec: ProcessSpec) -> tuple[RegionSpec, ...]:
        if spec.regions or spec.fork_of is None:
            return spec.regions
        return self._regions(self.spec(spec.fork_of))

    def module_rows(self, spec: ProcessSpec) -> set[tuple]:
        """(start, end, protection, private, file) of every mapped module."""
        plan = self.plan(spec.pid)
        mapped = {(d.arch, d.name.lower()): d.implants.mapped_file for d in spec.module_details if d.implants.mapped_file}
        rows = set()
        for module in plan.modules + plan.modules32:
            name = module.path.rsplit("\\", 1)[-1].lower()
            other = mapped.get(("x64" if module.bits == 64 else "x86", name))  # the file the VAD maps instead
            rows.add((module.base, module.base + module.size - 1, "PAGE_EXECUTE_WRITECOPY", 0,
                      nt_file_name(other or module.path)))
        return rows

    def vad_count(self, spec: ProcessSpec) -> int:
        return len(self.plan(spec.pid).vads)

    def dll_rows(self, spec: ProcessSpec) -> list[tuple]:
        """dlllist rows in load order: the 64-bit loader list, then (WOW64) the 32-bit one."""
        plan = self.plan(spec.pid)
        rows = []
        for module in plan.modules + plan.modules32:
            if module.linked:
                rows.append((module.base, module.size, module.path.rsplit("\\", 1)[-1], module.path))
        return rows

    def scenario_modules(self, spec: ProcessSpec) -> set[str]:
        """Module names the scenario itself lists (they must all be in the loader lists, when linked)."""
        names = set(spec.modules or ())
        names |= {m.name.lower() for m in spec.module_details if m.linked}
        return {n.lower() for n in names}

    def malfind_starts(self, spec: ProcessSpec) -> set[int]:
        """Private executable regions with content: what malfind must report (and nothing else). It
        takes RWX regions by their protection and other executable ones by their dirty pages (written
        after allocation, as the forge writes every private page)."""
        plan = self.plan(spec.pid)
        starts = set()
        for region in self._regions(spec):
            if "X" in region.protection and region.kind == "private":
                vad = self.region_vad(spec, region)
                written = any(w.va >= vad.start and w.va <= vad.end and any(w.data) for w in plan.writes)
                if written:
                    starts.add(vad.start)
        return starts
