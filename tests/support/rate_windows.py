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


def within_one_window(needed: float = 15.0, window: float = 60.0) -> None:
    """Return once at least ``needed`` seconds are left in the current ``window`` of
    the clock: at once, or after sleeping into the next one."""
    left = window - time.time() % window
    if left < needed:
        time.sleep(left + 0.1)


def spends_request_budgets(env: Mapping[str, str]) -> bool:
    """Whether a served process's ``env`` sets a per-token or per-address budget."""
    return any(env.get(name, "").strip() for name in REQUEST_BUDGETS)
