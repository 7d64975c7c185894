"""The rate limiter's windows on a clock of the test's own (no server, no database)."""

from __future__ import annotations

import time

import pytest

from gql.http.rate_limit import Budgets, RateLimiter


async def test_sign_in_failures_are_counted_exactly_when_a_window_turns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three failures just before a minute turns still lock the address just after it
    (a sliding window counter would weigh them at 2.975 of 3 and let a fourth guess in)."""
    now = [60.0 * 29_000_000 + 59.5]
    monkeypatch.setattr(time, "time", lambda: now[0])
    limiter = RateLimiter("memory://", Budgets.parse("", "", "3/minute"))
    for _ in range(3):
        await limiter.sign_in_failed("198.51.100.7")
    now[0] += 1.0

    assert await limiter.sign_in_refused("198.51.100.7") is not None
    now[0] += 60.0
    assert await limiter.sign_in_refused("198.51.100.7") is None
