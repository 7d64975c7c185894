"""Valid tokens as last read, for at most a second: most requests then cost no
statement to authenticate.

A process reads a token (with its user) at most once per ``seconds``; each request gets
a copy of its own. What makes a token invalid takes effect

- in this process, at once: a unit of work that wrote a user or a token (a revocation,
  a deactivation, a demotion, an erasure) empties the cache when it commits;
- in every other process, within ``seconds``, whatever they share: an entry is used
  only that long after it was read, so no message between processes can be lost or late;
- at its expiry, to the instant: it is checked on every use.

Only valid tokens are kept: an unknown one is looked up every time (and costs its
address a sign-in failure, :mod:`gql.http.rate_limit`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from persistence.engine import Committed
from persistence.repositories.api_token import ValidToken

_ABOUT_TOKENS = frozenset({"users", "api_tokens", "user_keys"})
_MOST = 10_000
"""Entries kept at most; the cache starts again empty when it is full."""


class TokenCache:
    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._read: dict[str, tuple[float, ValidToken]] = {}

    def get(self, token_hash: str, now: datetime) -> ValidToken | None:
        """A copy of the token with this hash as last read, if that was within
        ``seconds`` and it has not expired since."""
        read = self._read.get(token_hash)
        if read is None:
            return None
        read_at, found = read
        if self._clock() - read_at >= self.seconds or (
            found.expires_at is not None and found.expires_at <= now
        ):
            del self._read[token_hash]
            return None
        return found.copied()

    def put(self, token_hash: str, found: ValidToken) -> None:
        """Keep ``found`` (just read); its user is never handed out, only copies."""
        if self.seconds <= 0:
            return
        if len(self._read) >= _MOST:
            self._read.clear()
        self._read[token_hash] = (self._clock(), found)

    def committed(self, committed: Committed) -> None:
        """A ``Database.commit_hooks`` hook: forget every token once a user or a token
        was written."""
        if committed.tables & _ABOUT_TOKENS:
            self._read.clear()
