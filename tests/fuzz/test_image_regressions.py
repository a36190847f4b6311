"""Images the fuzzer broke the plugins with, rebuilt by code, through both plugins in a worker.

Each case is one crafted corruption of a forged image (no random draw: the mutation is built
from the forge's own plan of the image), run like a fuzz case: ``callstacks.detect`` and
``callstacks.stacks`` in a worker process under a time bound, every thread Volatility lists
held against the stacks plugin's rows.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.fuzz.image_kernel_mutations import deep_vad_chain
from tests.fuzz.image_mutation_base import Mutation
from tests.fuzz.image_pool import ImagePool, ImageTask, WorkerLost
from tests.fuzz.image_run import ImageOutcome
from tests.fuzz.images import ImageCorpus
from tests.fuzz.image_view import ForgedView

SCENARIO = "dirty_vanity_fork"
EXPLORER = 3140


def _deep_vad_chain(view: ForgedView) -> Mutation:
    """A 120-node VAD chain below explorer.exe's root VAD: Volatility's traversal raises
    RuntimeError("Vad tree is too deep") past depth 100, which escaped callstacks.stacks."""
    root = view.vad_nodes(EXPLORER)[0]
    for seed in range(64):  # the chain hangs below the root (not as the root) for one of these seeds
        mutation = deep_vad_chain(random.Random(seed), view, EXPLORER, root.va)
        if mutation is not None and "below VAD" in mutation.what:
            return mutation
    raise AssertionError("no seed hangs the chain below the root VAD")


CASES = {"deep VAD chain": _deep_vad_chain}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, ImageOutcome | WorkerLost]:
    folder: Path = tmp_path_factory.mktemp("image-regressions")
    corpus = ImageCorpus(folder, (SCENARIO,))
    view = corpus.view(SCENARIO)
    names = sorted(CASES)
    tasks = []
    for key, name in enumerate(names):
        mutation = CASES[name](view)
        tasks.append(ImageTask(key, SCENARIO, mutation.patches, mutation.truncate))
    results: dict[str, ImageOutcome | WorkerLost] = {}
    with ImagePool(1, corpus.symbols, corpus.images, folder, task_seconds=120) as pool:
        pool.run(iter(tasks), lambda task, result: results.__setitem__(names[task.key], result))
    return results


def _clean_run(result: ImageOutcome | WorkerLost) -> ImageOutcome:
    assert isinstance(result, ImageOutcome), result
    assert result.crash is None, result.crash
    assert result.unopenable is None
    assert result.dropped == []
    return result


def test_a_vad_chain_deeper_than_volatility_walks_is_a_note_not_a_crash(outcomes) -> None:
    result = _clean_run(outcomes["deep VAD chain"])
    assert result.listed > 0
    assert result.detections > 0  # the Dirty Vanity rules still fire on the other processes
