"""What wakes this process's live updates, and the read that follows each wake-up.

The :class:`Listener` reads the committed trail after the bus's head
(:func:`persistence.feed.read_after`) and publishes it, whenever it is woken:

- PostgreSQL: by the sequencer's ``NOTIFY`` (:data:`persistence.feed.CHANNEL`), heard
  on a connection of its own, straight to the primary (``LISTEN`` does not survive a
  transaction-pooling PgBouncer: ``AUDITQL_DATABASE_LISTEN_URL``). A lost connection
  is made again, and the read that follows fills the gap from the trail;
- SQLite: by this process's own commits (units of work chain their entries inline);
- and, on either, every ``poll`` seconds, in case a wake-up was missed (another
  process's commit on SQLite, a listener still reconnecting).

One read per wake-up serves every subscriber of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gql.live.bus import Bus
from persistence.engine import Committed, Database
from persistence.errors import transient_fault
from persistence.feed import BATCH, CHANNEL, head_position, read_after

logger = logging.getLogger("auditql.live")

_MAX_PAUSE = 5.0
_READING = "read the audit trail"
_LISTENING = "listen for new positions"
_HEARTBEAT = 10.0
"""Seconds between checks that a quiet listening connection is still answered."""
NAME = "auditql-live"
"""The ``application_name`` of live updates' connections, as ``pg_stat_activity`` shows
them beside the requests' (``auditql``)."""


class Listener:
    def __init__(
        self,
        database: Database,
        bus: Bus,
        *,
        reads: AsyncEngine,
        listen: str | None,
        poll: float,
    ) -> None:
        """``reads``: an engine of its own to read the trail with (its statements are no
        request's, and wait for none of their connections); ``listen``: the PostgreSQL
        server to LISTEN on (an asyncpg DSN), None to rely on polls and this process's
        commits."""
        self._database = database
        self._reads = reads
        self._bus = bus
        self._listen = listen
        self._poll = poll
        self._wake = asyncio.Event()
        self._failures = Failures()

    def wake(self) -> None:
        self._wake.set()

    def _committed(self, committed: Committed) -> None:
        """A unit of work of this process that chained its entries (SQLite) wakes it."""
        if committed.chained:
            self.wake()

    async def run(self) -> None:
        """Read and publish after every wake-up, until cancelled."""
        self._database.commit_hooks.append(self._committed)
        listening = asyncio.create_task(self._keep_listening()) if self._listen else None
        try:
            await self._start()
            while True:
                # asyncio.timeout, not wait_for: in Python 3.11, wait_for may swallow
                # the task's cancellation when the wake-up comes at the same moment.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll):
                        await self._wake.wait()
                self._wake.clear()
                await self._read()
        finally:
            self._database.commit_hooks.remove(self._committed)
            if listening is not None:
                listening.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listening

    async def _start(self) -> None:
        """Begin at the head: a subscriber asks for older events with a cursor."""
        pause = 0.1
        while True:
            try:
                async with self._connect() as connection:
                    self._bus.head = await head_position(connection)
                self._failures.recovered(_READING)
                return
            except Exception as exc:
                self._failures.failed(exc, _READING)
                await asyncio.sleep(pause)
                pause = min(pause * 2, _MAX_PAUSE)

    async def _read(self) -> None:
        try:
            while True:
                async with self._connect() as connection:
                    events = await read_after(connection, self._bus.head)
                self._bus.publish(events)
                if len(events) < BATCH:
                    break
        except Exception as exc:
            # The next wake-up (the poll at the latest) reads from the same head.
            self._failures.failed(exc, _READING)
        else:
            self._failures.recovered(_READING)

    def _connect(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        return self._reads.connect()

    async def _keep_listening(self) -> None:
        """LISTEN on a connection of its own; again after losing it (the wake-up that
        follows reads whatever was announced meanwhile)."""
        assert self._listen is not None
        pause = 0.1
        while True:
            try:
                raw = await asyncpg.connect(
                    self._listen,
                    timeout=_HEARTBEAT / 2,
                    server_settings={"application_name": NAME},
                )
            except Exception as exc:
                self._failures.failed(exc, _LISTENING)
            else:
                try:
                    lost = asyncio.Event()
                    raw.add_termination_listener(lambda _connection, lost=lost: lost.set())
                    await raw.add_listener(CHANNEL, self._notified)
                    pause = 0.1
                    self._failures.recovered(_LISTENING)
                    self.wake()
                    await self._until_lost(raw, lost)
                except Exception as exc:
                    self._failures.failed(exc, _LISTENING)
                finally:
                    raw.terminate()  # at once, even when cancelled: nothing to say to it
            await asyncio.sleep(pause)
            pause = min(pause * 2, _MAX_PAUSE)

    @staticmethod
    async def _until_lost(raw: Any, lost: asyncio.Event) -> None:
        """Return when the connection ends, or stops answering (a frozen server, a
        partition: nothing would tell a connection that only listens)."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_HEARTBEAT):
                    await lost.wait()
                return
            await raw.fetchval("SELECT 1", timeout=_HEARTBEAT / 2)

    def _notified(self, *_args: object) -> None:
        self.wake()


class Failures:
    """Failures logged once per run of them, and the recovery at INFO: a database that
    cannot be reached in one line, anything else (a bug) in full."""

    def __init__(self) -> None:
        self._failing: set[str] = set()

    def failed(self, exc: Exception, what: str) -> None:
        if what in self._failing:
            return
        self._failing.add(what)
        if _unreachable(exc):
            logger.warning("live updates cannot %s: %s; retrying", what, type(exc).__name__)
        else:
            logger.error("live updates cannot %s; retrying", what, exc_info=exc)

    def recovered(self, what: str) -> None:
        if what in self._failing:
            self._failing.discard(what)
            logger.info("live updates can %s again", what)


def _unreachable(exc: Exception) -> bool:
    """The database is down, restarting, or not answering (on a pooled connection, or on
    the listener's own asyncpg connection, whose errors come unwrapped)."""
    return transient_fault(exc) is not None or isinstance(exc, _UNREACHABLE)


_UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,  # the connection closed under it
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
)
