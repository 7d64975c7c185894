"""Reads from PostgreSQL streaming replicas, with read-your-writes by WAL position.

A :class:`ReplicaSet` watches every replica named by ``database_replica_urls`` (one
probe each per :data:`CHECK_INTERVAL`): how far it has replayed the primary's WAL and
how far behind it is. A replica is *in rotation* while it answers the probe within
:data:`PROBE_TIMEOUT` and lags at most ``replica_max_lag`` seconds.

Each request reads from one place, chosen at its first read (:class:`RequestReads`):

- without a consistency token, the next replica in rotation (round robin);
- with a token (the WAL position of a commit the client saw), a replica in rotation
  that has replayed at least that position; if none has yet, it waits up to
  ``replica_wait_ms``, asking the replicas, and otherwise reads from the primary;
- the primary, when no replica is in rotation, and always once the request has
  written (a mutation's own results must show its writes).

A token is the insert position of the WAL after a unit of work committed, so at or past
the end of its commit record: a replica that has replayed it has the commit. Tokens are
opaque to clients and need no secret: a forged one names a WAL position, which costs at
most the wait before reading from the primary.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, TextClause, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

logger = logging.getLogger("auditql.replicas")

CHECK_INTERVAL = 0.5
PROBE_TIMEOUT = 1.0
WAIT_POLL = 0.01

_PROBE = text(
    "SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn AS replayed,"
    " extract(epoch FROM now() - pg_last_xact_replay_timestamp()) AS behind"
)
_PRIMARY_POSITION = text("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn")
_REPLAYED = text("SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn")


def encode_token(position: int) -> str:
    """The consistency token of a WAL position: opaque text, safe in a header."""
    return "1." + base64.urlsafe_b64encode(position.to_bytes(8, "big")).rstrip(b"=").decode()


def decode_token(token: str | None) -> int | None:
    """The WAL position a token names; None for no token or one that is not a token
    (a request is never refused for its token: it reads as if it sent none)."""
    if not token or not token.startswith("1.") or len(token) > 20:
        return None
    try:
        raw = base64.urlsafe_b64decode(token[2:] + "=" * (-len(token[2:]) % 4))
    except (binascii.Error, ValueError):
        return None
    return int.from_bytes(raw, "big") if len(raw) == 8 else None


@dataclass
class Replica:
    """One replica: where it is, its read sessions, and what its last probe saw."""

    name: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    replayed: int = 0
    lag: float | None = None
    answering: bool = False
    checked_at: float = 0.0

    def in_rotation(self, max_lag: float) -> bool:
        return self.answering and self.lag is not None and self.lag <= max_lag

    @property
    def state(self) -> str:
        return "up" if self.answering else "down"


def replica_name(url: str) -> str:
    """How a replica is named in metrics and logs: host, port and database, never the
    password."""
    parsed = make_url(url)
    return f"{parsed.host}:{parsed.port or 5432}/{parsed.database}"


@dataclass
class ReadCounts:
    """What routing did, for /metrics: reads by where they went, and the reads that
    waited for a replica to replay their token, by how the wait ended."""

    reads: dict[str, int] = field(default_factory=dict)
    waits: dict[str, int] = field(default_factory=lambda: {"replica": 0, "primary": 0})

    def read(self, target: str) -> None:
        self.reads[target] = self.reads.get(target, 0) + 1


class ReplicaSet:
    def __init__(
        self,
        replicas: list[Replica],
        primary: AsyncEngine,
        *,
        max_lag: float,
        wait: float,
    ) -> None:
        self.replicas = replicas
        self.counts = ReadCounts()
        self._primary = primary
        self._max_lag = max_lag
        self._wait = wait
        self._turn: Iterator[int] = itertools.count()
        self.primary_position = 0

    # Health -------------------------------------------------------------------------

    async def watch(self) -> None:
        """Probes every replica forever, each on its own: a silent one delays no other."""
        while True:
            await self.check()
            await asyncio.sleep(CHECK_INTERVAL)

    async def check(self) -> None:
        # A replica is caught up when it has replayed what the primary had written one
        # check ago: what was written a moment before the probe may still be in flight.
        previous = self.primary_position
        self.primary_position = await self._primary_position() or previous
        await asyncio.gather(*(self._probe(replica, previous) for replica in self.replicas))

    async def _primary_position(self) -> int | None:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                return int((await _one(self._primary, _PRIMARY_POSITION))[0])
        except Exception:  # the primary's own faults are the requests' business
            return None

    async def _probe(self, replica: Replica, primary_position: int) -> None:
        was = replica.in_rotation(self._max_lag)
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                row = await _one(replica.engine, _PROBE)
        except Exception as exc:
            replica.answering = False
            self._said(replica, was, f"it does not answer ({type(exc).__name__})")
            return
        replica.answering, replica.replayed = True, int(row.replayed)
        # Caught up: no lag, however old its last replayed transaction (an idle primary
        # writes none). Behind: as old as the last transaction it replayed.
        caught_up = replica.replayed >= primary_position
        replica.lag = 0.0 if caught_up or row.behind is None else max(0.0, float(row.behind))
        replica.checked_at = time.monotonic()
        self._said(replica, was, f"it lags {replica.lag:.1f} s")

    def _said(self, replica: Replica, was: bool, why: str) -> None:
        now = replica.in_rotation(self._max_lag)
        if now and not was:
            logger.info("replica %s is in rotation", replica.name)
        elif was and not now:
            logger.warning("replica %s left the rotation: %s", replica.name, why)

    # Routing ------------------------------------------------------------------------

    def _rotation(self) -> list[Replica]:
        healthy = [r for r in self.replicas if r.in_rotation(self._max_lag)]
        if not healthy:
            return []
        start = next(self._turn) % len(healthy)
        return healthy[start:] + healthy[:start]

    async def choose(self, position: int | None) -> Replica | None:
        """The replica a request reads from (None: the primary); see the module."""
        rotation = self._rotation()
        if position is None or not rotation:
            return rotation[0] if rotation else None
        for replica in rotation:
            if replica.replayed >= position:
                return replica
        found = await self._wait_for(rotation, position)
        self.counts.waits["replica" if found else "primary"] += 1
        return found

    async def _wait_for(self, rotation: list[Replica], position: int) -> Replica | None:
        try:
            async with asyncio.timeout(self._wait):
                while True:
                    for replica in rotation:
                        if await self._replayed(replica) >= position:
                            return replica
                    await asyncio.sleep(WAIT_POLL)
        except TimeoutError:
            return None

    async def _replayed(self, replica: Replica) -> int:
        try:
            replica.replayed = int((await _one(replica.engine, _REPLAYED))[0])
        except Exception:  # a replica that fails to say has replayed nothing we know of
            return 0
        return replica.replayed

    def status(self) -> list[dict[str, Any]]:
        """Each replica's state, for /ready."""
        return [
            {"replica": r.name, "state": r.state, "inRotation": r.in_rotation(self._max_lag),
             "lagSeconds": r.lag}
            for r in self.replicas
        ]  # fmt: skip

    async def position(self, engine: AsyncEngine) -> int:
        """The primary's WAL insert position now: after a commit, at or past its end."""
        return int((await _one(engine, _PRIMARY_POSITION))[0])


async def _one(engine: AsyncEngine, statement: TextClause) -> Row[Any]:
    """The one row ``statement`` returns, in autocommit: one round trip."""
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        return (await autocommit.execute(statement)).one()


class RequestReads:
    """A request's ``reader``: the session factory of the place its reads go to, chosen
    at its first read (``replicas.choose``) and the primary's once it has written."""

    def __init__(
        self,
        primary: Callable[[], AbstractAsyncContextManager[AsyncSession]],
        replicas: ReplicaSet,
        position: int | None,
    ) -> None:
        self._primary = primary
        self._replicas = replicas
        self._position = position
        self._chosen: Replica | None = None
        self._decided: asyncio.Task[Replica | None] | None = None
        self.pinned = False

    def pin_to_primary(self) -> None:
        self.pinned = True

    @property
    def used_replica(self) -> Replica | None:
        return self._chosen

    def __call__(self) -> _Session:
        return _Session(self)

    async def factory(self) -> Callable[[], AbstractAsyncContextManager[AsyncSession]]:
        if not self.pinned:
            if self._decided is None:  # concurrent first reads share one decision
                self._decided = asyncio.ensure_future(self._replicas.choose(self._position))
            self._chosen = await self._decided
        chosen = None if self.pinned else self._chosen
        self._replicas.counts.read(chosen.name if chosen else "primary")
        return chosen.sessions if chosen else self._primary


class _Session:
    """``async with reads() as session``: the session opens once the place is chosen."""

    def __init__(self, reads: RequestReads) -> None:
        self._reads = reads
        self._session: AbstractAsyncContextManager[AsyncSession] | None = None

    async def __aenter__(self) -> AsyncSession:
        self._session = (await self._reads.factory())()
        return await self._session.__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        assert self._session is not None
        await self._session.__aexit__(*exc)


def replica_set_factory(
    urls: list[str], make_replica: Callable[[str], Replica], primary: AsyncEngine,
    *, max_lag: float, wait: float,
) -> ReplicaSet | None:  # fmt: skip
    """The replica set of ``urls``, or None when there are none."""
    if not urls:
        return None
    return ReplicaSet([make_replica(url) for url in urls], primary, max_lag=max_lag, wait=wait)
