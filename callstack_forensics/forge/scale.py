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


def scale_threads(scenario: Scenario, factor: int) -> Scenario:
    """``scenario`` with every user thread spec cloned ``factor - 1`` times and ``factor`` x the system threads.

    Clones take TIDs from a block above every process and thread id the scenario uses, so no
    TID repeats and none equals a process id (Windows numbers both from one table).
    """
    if factor < 1:
        raise ScenarioError(f"{scenario.path.name}: threads scale must be at least 1, got {factor}")
    if factor == 1:
        return scenario
    used = {p.pid for p in scenario.processes}
    used |= {t.tid + 4 * n for p in scenario.processes for t in p.threads for n in range(t.count)}
    next_tid = (max(used) // 4 + 1) * 4
    processes = []
    for spec in scenario.processes:
        clones: list[ThreadSpec] = []
        for copy in range(1, factor):
            for thread in spec.threads:
                clones.append(replace(thread, tid=next_tid, where=f"{thread.where} (threads scale copy {copy})"))
                next_tid += 4 * thread.count
        processes.append(_scaled_process(spec, clones, factor))
    return replace(scenario, processes=tuple(processes))


def _scaled_process(spec: ProcessSpec, clones: list[ThreadSpec], factor: int) -> ProcessSpec:
    return replace(spec, threads=spec.threads + tuple(clones), system_threads=spec.system_threads * factor)


__all__ = ["scale_threads"]
