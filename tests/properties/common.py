"""What every property test here shares: the example budget and the time bound per example."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from tests.fuzz.timeout import time_limit

EXAMPLES = 200
SECONDS_PER_EXAMPLE = 5.0  # any example that takes this long is a hang: it fails, not stalls

PROPERTY = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


def bounded():
    """The per-example time bound (SIGALRM): a loop in the code under test fails the example."""
    return time_limit(SECONDS_PER_EXAMPLE)
