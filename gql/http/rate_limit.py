"""Rate limits: how often a token, or an anonymous client address, may call the API, and
how many failed sign-ins an address or an account may have.

Three budgets, each a list of windows in the ``limits`` notation (``10/second;300/minute``;
an empty string turns the budget off):

- per token, for requests with a bearer token (keyed by the token's SHA-256, so one
  abusive token spends only its own budget);
- per client address, for anonymous requests;
- sign-in failures, per client address and, for ``login``, per account: a rejected token
  or a wrong password spends it, and once it is spent, tokens and passwords from that
  address (or for that account) are refused before they are checked, so guessing is slow.

Requests are counted by sliding window counters, which weigh the previous window's count
by how much of it the current one still overlaps: cheap, and a little generous just
after a window turns over. Sign-in failures are counted exactly, by a moving window of
their times: a lockout after 3 failures a minute never lets a fourth guess through at a
minute's turn.

Counters live in a ``limits`` storage named by URI: ``memory://`` (the default: this
process's own counters) or ``redis://host:6379/0`` (shared by every API process). If the
shared store cannot be reached the request is let through and a warning logged: an
outage of the limiter must not become an outage of the API.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.aio.strategies import (
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.aio.strategies import (
    RateLimiter as Strategy,
)
from limits.errors import StorageError
from limits.storage import storage_from_string

from persistence.security import hash_token

logger = logging.getLogger("auditql.rate_limit")

Budget = tuple[RateLimitItem, ...]


def parse_budget(notation: str) -> Budget:
    """``"10/second;300/minute"`` -> its windows; ``""`` -> none (no limit)."""
    return tuple(parse_many(notation)) if notation.strip() else ()


def async_storage_uri(uri: str) -> str:
    """The ``limits`` URI of the async flavour of a storage: ``redis://`` ->
    ``async+redis://``."""
    return uri if uri.startswith("async+") else f"async+{uri}"


@dataclass(frozen=True)
class Budgets:
    per_token: Budget
    per_address: Budget
    sign_in_failures: Budget

    @classmethod
    def parse(cls, per_token: str, per_address: str, sign_in_failures: str) -> Budgets:
        """The budgets from their notation (``"10/second;300/minute"``; ``""``: none)."""
        return cls(
            parse_budget(per_token), parse_budget(per_address), parse_budget(sign_in_failures)
        )


class RateLimiter:
    def __init__(self, storage_uri: str, budgets: Budgets) -> None:
        # wrap_exceptions: every storage failure arrives as limits' StorageError.
        storage = storage_from_string(async_storage_uri(storage_uri), wrap_exceptions=True)
        self._requests = SlidingWindowCounterRateLimiter(storage)
        self._failures = MovingWindowRateLimiter(storage)
        self._budgets = budgets

    async def admit(self, authorization: str | None, address: str) -> int | None:
        """Spends one request of the caller's budget: None when admitted, else the
        seconds to wait. A caller with a token spends the token's budget, and is refused
        while its address has no sign-in failures left; anyone else spends the
        address's."""
        if authorization is None:
            return await self._check(
                self._requests, self._budgets.per_address, f"address:{address}", spend=True
            )
        refused = await self.sign_in_refused(address)
        if refused is not None:
            return refused
        token = hash_token(authorization.strip().partition(" ")[2].strip())
        return await self._check(
            self._requests, self._budgets.per_token, f"token:{token}", spend=True
        )

    async def sign_in_refused(self, address: str, account: str | None = None) -> int | None:
        """None while sign-ins from ``address`` (for ``account``) may be tried, else the
        seconds to wait."""
        for key in _failure_keys(address, account):
            refused = await self._check(
                self._failures, self._budgets.sign_in_failures, key, spend=False
            )
            if refused is not None:
                return refused
        return None

    async def sign_in_failed(self, address: str, account: str | None = None) -> None:
        for key in _failure_keys(address, account):
            await self._check(self._failures, self._budgets.sign_in_failures, key, spend=True)

    async def _check(
        self, strategy: Strategy, budget: Budget, key: str, *, spend: bool
    ) -> int | None:
        """None when every window of ``budget`` has room (spending from each when
        ``spend``), else the seconds until the first full window has room again."""
        consume = strategy.hit if spend else strategy.test
        try:
            for window in budget:
                if not await consume(window, key):
                    return await _retry_after(strategy, window, key)
        except StorageError:
            logger.warning("rate limit storage failed; request let through", exc_info=True)
        return None


async def _retry_after(strategy: Strategy, window: RateLimitItem, key: str) -> int:
    reset_at, _remaining = await strategy.get_window_stats(window, key)
    return max(1, math.ceil(reset_at - time.time()))


def _failure_keys(address: str, account: str | None) -> list[str]:
    keys = [f"failures:{address}"]
    if account is not None:
        keys.append(f"failures:account:{account.strip().lower()}")
    return keys
