"""Spending a rate limit's budget within one of its windows.

Requests are counted by sliding window counters (:mod:`gql.http.rate_limit`), whose
windows are aligned to the clock: a minute's budget counts from :00. Just after a window
turns, the previous window's count is weighed by how much of it is still overlapped
(and rounded down), so one more request is admitted than a test spending its budget
across the turn expects. Such a test starts its spending within one window instead.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

REQUEST_BUDGETS = ("AUDITQL_RATE_LIMIT_PER_TOKEN", "AUDITQL_RATE_LIMIT_PER_ADDRESS")
_WINDOW = 60.0
"""The tests' budgets are per minute."""
_NEEDED = 15.0
"""Seconds a test may take to spend its budget."""


def within_one_window() -> None:
    """Return once at least ``_NEEDED`` seconds are left in the clock's current minute:
    at once, or after sleeping into the next one."""
    left = _WINDOW - time.time() % _WINDOW
    if left < _NEEDED:
        time.sleep(left + 0.1)


def spends_request_budgets(env: Mapping[str, str]) -> bool:
    """Whether a served process's ``env`` sets a per-token or per-address budget."""
    return any(env.get(name, "").strip() for name in REQUEST_BUDGETS)
