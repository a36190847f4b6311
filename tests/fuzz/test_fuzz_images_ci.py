"""The CI-sized image fuzz run: a dozen mutated forged images through callstacks.detect and
callstacks.stacks, in two worker processes, each under its time bound.

The full run is ``make fuzz`` (1,000 images); this one keeps the harness itself honest in
``make test``: every image ends clean or noted, nothing escapes the plugins, nothing hangs,
and every thread Volatility lists is in the stacks plugin's output or its process is noted.
"""

from __future__ import annotations

import time

from tests.fuzz.images import ImageCorpus, make_case, run_images

CI_IMAGES = 12
CI_SEED = 20240514


def test_ci_sized_image_fuzz_run_has_no_crash_hang_or_dropped_thread() -> None:
    counts = run_images(CI_IMAGES, CI_SEED, time.monotonic() + 600)
    failures = [f"{f.detail} [{f.reproduce}]" for f in counts.crashes + counts.hangs]
    assert not failures, "\n".join(failures)
    assert counts.dropped_threads == 0
    assert counts.tried == CI_IMAGES and not counts.stopped_early
    assert counts.tried == counts.clean + counts.noted
    assert counts.accounted
    assert counts.noted > 0, "a dozen mutated images and not one note: the mutations miss"


def test_image_cases_are_rebuilt_from_seed_and_index(tmp_path) -> None:
    first = ImageCorpus(tmp_path / "a")
    second = ImageCorpus(tmp_path / "b")
    for index in range(6):
        one, two = make_case(first, CI_SEED, index), make_case(second, CI_SEED, index)
        assert one.describe() == two.describe()
        assert one.task() == two.task()
        assert 1 <= len(one.mutations) <= 5
