"""A scenario with N times its threads: the same processes, every thread cloned with its own TID and stack.

Why: speed figures only mean something if they hold as an image grows, and a real host's thread
count is many times a scenario's. Scaling at the scenario level (rather than copying bytes in a
built image) keeps every clone a real thread: the builder gives it its own TEB, stack, trap frame
and ETHREAD, lays its call chain out from the modules' unwind data, and runs the stack composer's
self-check on it, exactly as for the threads the scenario names.
"""

from __future__ import annotations

from dataclasses import replace

from .scenario import ProcessSpec, Scenario, ScenarioError, ThreadSpec


def _first_free_id(scenario: Scenario) -> int:
    """The first multiple of 4 above every process and thread id the scenario uses: clones number
    from there, so no id repeats and none equals another's (Windows numbers both from one table)."""
    used = {p.pid for p in scenario.processes}
    used |= {t.tid + 4 * n for p in scenario.processes for t in p.threads for n in range(t.count)}
    return (max(used) // 4 + 1) * 4


def scale_threads(scenario: Scenario, factor: int) -> Scenario:
    """``scenario`` with every user thread spec cloned ``factor - 1`` times and ``factor`` x the system threads.

    Clones take TIDs from a block above every process and thread id the scenario uses, so no
    TID repeats and none equals a process id (Windows numbers both from one table).
    """
    if factor < 1:
        raise ScenarioError(f"{scenario.path.name}: threads scale must be at least 1, got {factor}")
    if factor == 1:
        return scenario
    next_tid = _first_free_id(scenario)
    processes = []
    for spec in scenario.processes:
        clones: list[ThreadSpec] = []
        for copy in range(1, factor):
            for thread in spec.threads:
                clones.append(replace(thread, tid=next_tid, where=f"{thread.where} (threads scale copy {copy})"))
                next_tid += 4 * thread.count
        processes.append(_scaled_process(spec, clones, factor))
    return replace(scenario, processes=tuple(processes))


def scale_processes(scenario: Scenario, factor: int) -> Scenario:
    """``scenario`` with every user process cloned ``factor - 1`` times (kernel processes once).

    Why: a real host runs ~150 processes, a scenario a few dozen, and per-process work (VAD
    trees, module lists, PEBs) grows with the first. Each clone is a real process the builder
    lays out afresh (its own EPROCESS, page tables, VADs, PEB, loader list, threads and stacks),
    with the same parent, image, modules and thread shapes as its original. Clones take process
    and thread ids from a block above every id the scenario uses.
    """
    if factor < 1:
        raise ScenarioError(f"{scenario.path.name}: processes scale must be at least 1, got {factor}")
    if factor == 1:
        return scenario
    next_id = _first_free_id(scenario)
    clones: list[ProcessSpec] = []
    for copy in range(1, factor):
        for spec in scenario.processes:
            if spec.kernel:
                continue
            pid, next_id = next_id, next_id + 4
            threads = []
            for thread in spec.threads:
                threads.append(replace(thread, tid=next_id, where=f"{thread.where} (processes scale copy {copy})"))
                next_id += 4 * thread.count
            clones.append(replace(spec, pid=pid, threads=tuple(threads), where=f"{spec.where} (processes scale copy {copy})"))
    return replace(scenario, processes=scenario.processes + tuple(clones))


def _scaled_process(spec: ProcessSpec, clones: list[ThreadSpec], factor: int) -> ProcessSpec:
    return replace(spec, threads=spec.threads + tuple(clones), system_threads=spec.system_threads * factor)


__all__ = ["scale_processes", "scale_threads"]
