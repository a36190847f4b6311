"""``@timestamp`` text: ISO 8601 in UTC, milliseconds (cut, not rounded), ``Z``; the same text
strftime gives, for naive times (taken as UTC), UTC and other offsets, and years before 1000."""

from __future__ import annotations

import datetime as dt
import random

from callstack_forensics.events.identity import timestamp


def _strftime_text(when: dt.datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_the_text_is_strftimes():
    rng = random.Random(2026)
    zones = [None, dt.timezone.utc, dt.timezone(dt.timedelta(hours=3)), dt.timezone(dt.timedelta(hours=-7, minutes=-30))]
    for _ in range(3000):
        year = rng.choice([rng.randrange(2, 1000), rng.randrange(1000, 9999), rng.randrange(1601, 2100)])
        when = dt.datetime(year, rng.randrange(1, 13), rng.randrange(1, 29), rng.randrange(24), rng.randrange(60),
                           rng.randrange(60), rng.choice([0, 999, 1000, 999999, rng.randrange(10 ** 6)]),
                           tzinfo=rng.choice(zones))
        assert timestamp(when) == _strftime_text(when), when


def test_known_values():
    assert timestamp(None) is None
    assert timestamp(dt.datetime(2024, 3, 1, 12, 3, 4, 567891)) == "2024-03-01T12:03:04.567Z"
    assert timestamp(dt.datetime(2024, 3, 1, 23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=-1)))) == \
        "2024-03-02T00:59:59.999Z"
