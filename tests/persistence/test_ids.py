"""UUIDv7 ids: time-ordered, strictly increasing, and never far ahead of the clock."""

from __future__ import annotations

import itertools
import time

from persistence.ids import uuid7


def test_ids_are_version_7_with_the_rfc_variant() -> None:
    value = uuid7()
    assert value.version == 7
    assert value.variant == "specified in RFC 4122"


def test_ids_made_in_a_burst_strictly_increase() -> None:
    ids = [uuid7() for _ in range(100_000)]
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert len(set(ids)) == len(ids)


def test_a_burst_does_not_push_timestamps_ahead_of_the_clock() -> None:
    # uuid6.uuid7() adds 1 ms per id made within one millisecond: 100,000 ids made in
    # 0.3 s would carry a timestamp 100 s in the future. These stay within the clock.
    ids = [uuid7() for _ in range(100_000)]
    after_ms = time.time_ns() // 1_000_000
    newest_ms = ids[-1].int >> 80
    assert newest_ms <= after_ms + 1


def test_ids_sort_by_creation_time_across_milliseconds() -> None:
    earlier = uuid7()
    time.sleep(0.002)
    later = uuid7()
    assert earlier < later
    assert (later.int >> 80) - (earlier.int >> 80) >= 2
