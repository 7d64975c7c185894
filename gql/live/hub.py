"""Live updates of one app: the bus, what wakes it, and the open WebSocket connections.

Each connection is a :class:`Channel`: who it is (the token it signed in with, or its
client address), how many subscriptions it runs, and how to close it. Every
``live_recheck_seconds`` the tokens of all open channels are checked again in one
statement: a revoked token, an expired one or a deactivated user has its connections
closed with 4403; a user whose rights changed (no longer a superuser, say) is seen as
they are now by the next event.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any
from uuid import UUID

from sqlalchemy.engine import make_url

from domain import tokens
from gql.live.bus import OVERFLOW_CLOSE, Bus
from gql.live.listener import NAME, Failures, Listener
from gql.settings import Settings
from persistence.base import utcnow
from persistence.engine import Database, create_engine
from persistence.feed import Event
from persistence.models import User

logger = logging.getLogger("auditql.live")

FORBIDDEN_CLOSE = 4403
"""graphql-transport-ws's Forbidden: the token is no good (a client does not retry)."""
REFUSED_REASON = "The token is invalid, expired or revoked."
_RECHECKING = "check the tokens of open connections"


class Channel:
    """One WebSocket connection's standing: see the module."""

    def __init__(
        self,
        hub: Live,
        *,
        token_id: UUID | None,
        viewer: User | None,
        authorization: str | None,
        address: str,
        close: Callable[[int, str], Coroutine[Any, Any, None]],
    ) -> None:
        self.hub = hub
        self.token_id = token_id
        self.viewer = viewer
        self.authorization = authorization
        """What the connection signed in with, for the rate limiter."""
        self.address = address
        self.owner = f"address:{address}" if token_id is None else f"token:{token_id}"
        """Whose subscriptions count together: the token's, or the client address's."""
        self._close = close
        self.subscriptions = 0

    def close(self, code: int, reason: str) -> None:
        """Close the connection soon (from a callback that cannot wait for it)."""
        task = asyncio.get_running_loop().create_task(self._close(code, reason))
        self.hub.closing.add(task)
        task.add_done_callback(self.hub.closing.discard)

    def overflowed(self) -> None:
        self.close(OVERFLOW_CLOSE, "Fell behind: resume from your last cursor.")

    def delivered(self, event: Event) -> None:
        self.hub.delivered += 1
        self.hub.observe_lag((utcnow() - event.committed_at).total_seconds())


class Live:
    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.bus = Bus()
        # One connection, read-only, for the listener's reads of the trail.
        bounds = {"db_pool_size": 1, "db_max_overflow": 0}
        self._reads = create_engine(settings.model_copy(update=bounds), read_only=True, name=NAME)
        self.listener = Listener(
            database,
            self.bus,
            reads=self._reads,
            listen=_listen_dsn(settings),
            poll=settings.live_poll_seconds,
        )
        self.channels: set[Channel] = set()
        self.closing: set[asyncio.Task[None]] = set()
        self._owners: Counter[str] = Counter()
        self.connections = 0
        """Open WebSocket connections, signed in or not."""
        self.delivered = 0
        self.observe_lag: Callable[[float], None] = lambda _seconds: None
        self._failures = Failures()

    async def run(self) -> None:
        """The listener and the token checks, until cancelled."""
        tasks = [asyncio.create_task(self.listener.run()), asyncio.create_task(self._recheck())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:  # a bug: said in full, not left to "never retrieved"
                logger.error("live updates stopped", exc_info=task.exception())
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)  # their connections closed before the engine is
            await self._reads.dispose()

    def join(self, channel: Channel) -> None:
        self.channels.add(channel)

    def leave(self, channel: Channel) -> None:
        self.channels.discard(channel)

    def may_subscribe(self, channel: Channel) -> str | None:
        """Why ``channel`` may not start another subscription (None: it may)."""
        settings = self.settings
        if channel.subscriptions >= settings.ws_max_subscriptions_per_connection:
            return (
                f"At most {settings.ws_max_subscriptions_per_connection} subscriptions "
                "run at once on one connection."
            )
        if self._owners[channel.owner] >= settings.ws_max_subscriptions_per_token:
            limit = settings.ws_max_subscriptions_per_token
            return f"At most {limit} subscriptions run at once per token."
        return None

    def started(self, channel: Channel) -> None:
        channel.subscriptions += 1
        self._owners[channel.owner] += 1

    def ended(self, channel: Channel) -> None:
        channel.subscriptions -= 1
        self._owners[channel.owner] -= 1
        if self._owners[channel.owner] <= 0:
            del self._owners[channel.owner]

    async def _recheck(self) -> None:
        while True:
            await asyncio.sleep(self.settings.live_recheck_seconds)
            signed_in = [c for c in self.channels if c.token_id is not None]
            if not signed_in:
                continue
            try:
                valid = await tokens.still_valid(self.database, {c.token_id for c in signed_in})  # type: ignore[misc]
            except Exception as exc:
                self._failures.failed(exc, _RECHECKING)
                continue
            self._failures.recovered(_RECHECKING)
            for channel in signed_in:
                user = valid.get(channel.token_id)  # type: ignore[arg-type]
                if user is None:
                    channel.close(FORBIDDEN_CLOSE, REFUSED_REASON)
                else:
                    channel.viewer = user


def _listen_dsn(settings: Settings) -> str | None:
    """Where to LISTEN, as asyncpg takes it: the primary itself (None: SQLite, or
    PgBouncer without AUDITQL_DATABASE_LISTEN_URL, which polls)."""
    if settings.is_sqlite:
        return None
    url = settings.database_listen_url
    if url is None and settings.db_pgbouncer:
        logger.warning(
            "live updates poll the audit trail every %s s: LISTEN does not work through "
            "PgBouncer; set AUDITQL_DATABASE_LISTEN_URL to the primary itself",
            settings.live_poll_seconds,
        )
        return None
    dsn = make_url(url or settings.database_url).set(drivername="postgresql")
    return dsn.render_as_string(hide_password=False)
