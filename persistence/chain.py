"""Commit-ordered positions for audit entries, linked into a hash chain.

Writers never wait on one another for the chain. On PostgreSQL each entry records the
transaction that wrote it (``audit_log.xid``, defaulted by the database), and a
*sequencer* pass, every ``interval`` seconds in one REPEATABLE READ transaction, takes
the entries whose transactions became visible since the previous pass's snapshot,
orders them by commit timestamp, and appends them to ``audit_chain`` after the head:

- an entry is taken exactly once, and only once committed: the visible set only grows
  from one snapshot to the next, and a rolled-back entry never becomes visible;
- if one COMMIT returned before another was sent, the first gets the lower position:
  a transaction leaves the running set before its COMMIT returns, so no snapshot sees
  the second without the first, and within a pass the commit timestamps order them;
- positions only ever appear above the head, so a reader that has seen position P
  never later finds a new entry at or below P.

Entries whose transaction id is older are not favoured: ids are made before commit.
The pass takes a transaction-scoped advisory lock, so several processes may run it
(one wins each time, through PgBouncer too), and the chain's unique keys reject the
rare pass that raced another on a stale snapshot; it is simply retried.

On SQLite writers already run one at a time (``BEGIN IMMEDIATE``), so each unit of
work appends its own entries just before COMMIT (:func:`append_pending`).
Ref: https://www.postgresql.org/docs/15/functions-info.html#FUNCTIONS-PG-SNAPSHOT
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self, cast
from uuid import UUID

from sqlalchemy import Connection, Table, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncResult
from sqlalchemy.orm import Session

from persistence import canonical
from persistence.base import utcnow
from persistence.checkpoints import Checkpointer
from persistence.errors import transient_fault
from persistence.feed import CHANNEL
from persistence.models.audit_chain import AuditChainLink, AuditTrail
from persistence.models.audit_log import AuditLog
from persistence.write_guard import auditing

logger = logging.getLogger("auditql.audit.chain")

PENDING = "auditql.audit_pending"
"""``Session.info`` key: the ids of the entries this SQLite unit of work wrote."""
CHAINED = "auditql.audit_chained"
"""``Session.info`` key: this SQLite unit of work chained entries before its COMMIT."""

PASS_LOCK = 0x6175_6469_7471_6C31
"""The advisory lock a sequencer pass takes ("auditql1"): one pass at a time."""
_MAX_PAUSE = 5.0
_TRACKING_OFF_PAUSE = 60.0
_CHUNK = 1000
_LOG = cast(Table, AuditLog.__table__)
_CHAIN = cast(Table, AuditChainLink.__table__)
ENTRY_COLUMNS = tuple(_LOG.c[name] for name in canonical.COLUMNS)

# The commit time of the transaction that wrote an entry (audit_log.xid is the 64-bit
# transaction id as a bigint); none for entries written before the chain began (0).
_COMMITTED_AT = (
    "CASE WHEN xid <> 0 THEN"
    " pg_xact_commit_timestamp(xid(CAST(CAST(xid AS text) AS xid8))) END AS committed_at"
)
_ENTRIES = f"SELECT {', '.join(canonical.COLUMNS)}, xid, {_COMMITTED_AT} FROM audit_log"
# The entries that became visible since the snapshot the previous pass stored: those of
# transactions that had not started (xid >= its xmax) or were still running (in its
# xip). Two index scans, whatever plan is cached.
_NEW_SINCE = text(f"""
{_ENTRIES} WHERE xid >= :xmax
UNION ALL
{_ENTRIES} WHERE xid = ANY(:running)
ORDER BY committed_at NULLS FIRST, xid, id
""").columns(*ENTRY_COLUMNS)
# The first pass over a trail without a chain: every visible entry, those written
# before the chain began first, in the order they were created.
_ALL = text(f"{_ENTRIES} ORDER BY committed_at NULLS FIRST, xid, created_at, id").columns(
    *ENTRY_COLUMNS
)


# A pass's first statement: the leader's lock, the pass's snapshot, the head, and
# whether any entry became visible since the head's snapshot (most passes find none, and
# end here).
_START = text("""
SELECT pg_try_advisory_xact_lock(:key) AS locked, pg_current_snapshot()::text AS snapshot,
       current_setting('track_commit_timestamp') AS tracking,
       head.position, head.chain_hash, head.snapshot AS previous,
       head.position IS NULL OR EXISTS (
           SELECT 1 FROM audit_log
            WHERE xid >= CAST(CAST(pg_snapshot_xmax(CAST(head.snapshot AS pg_snapshot)) AS text)
                              AS bigint)
           UNION ALL
           SELECT 1 FROM audit_log
            WHERE xid IN (SELECT CAST(CAST(running AS text) AS bigint)
                            FROM pg_snapshot_xip(CAST(head.snapshot AS pg_snapshot)) AS running)
       ) AS pending
  FROM (SELECT 1) AS one LEFT JOIN LATERAL (
       SELECT position, chain_hash, snapshot FROM audit_chain ORDER BY position DESC LIMIT 1
  ) AS head ON true
""")


_ANNOUNCE = text("SELECT pg_notify(:channel, :head)")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A PostgreSQL snapshot (``pg_snapshot``'s text form ``xmin:xmax:xip,...``): the
    transactions whose effects it sees."""

    xmin: int
    xmax: int
    running: frozenset[int]

    @classmethod
    def parse(cls, value: str) -> Snapshot:
        xmin, xmax, running = value.split(":")
        return cls(int(xmin), int(xmax), frozenset(int(x) for x in running.split(",") if x))

    def sees(self, xid: int) -> bool:
        return xid < self.xmin or (xid < self.xmax and xid not in self.running)


@dataclass(frozen=True, slots=True)
class Head:
    """The last link of the chain, or the genesis before the first one."""

    position: int
    chain_hash: bytes
    snapshot: str | None = None


class TrackingOffError(RuntimeError):
    """PostgreSQL does not record commit timestamps; entries cannot be ordered."""

    def __init__(self) -> None:
        super().__init__(
            "audit entries cannot be sequenced: PostgreSQL runs with "
            "track_commit_timestamp=off (set it on in postgresql.conf and restart)"
        )


async def head(connection: AsyncConnection) -> Head:
    return await connection.run_sync(_head)


def _log_failure(exc: Exception) -> None:
    transient = transient_fault(exc)
    if transient is not None:
        logger.warning("audit sequencer paused: %s; retrying", transient)
    elif _not_migrated(exc):
        logger.info("audit sequencer waiting: the database is not migrated yet")
    else:
        logger.error("audit sequencer pass failed; retrying", exc_info=exc)


def _not_migrated(exc: Exception) -> bool:
    """The chain's tables are missing: PostgreSQL's undefined_table, SQLite's no such
    table."""
    if not isinstance(exc, DBAPIError):
        return False
    return getattr(exc.orig, "sqlstate", None) == "42P01" or "no such table" in str(exc.orig)


def _head(connection: Connection) -> Head:
    row = connection.execute(
        select(_CHAIN.c.position, _CHAIN.c.chain_hash, _CHAIN.c.snapshot)
        .order_by(_CHAIN.c.position.desc())
        .limit(1)
    ).first()
    if row is not None:
        return Head(row.position, row.chain_hash, row.snapshot)
    trail = connection.scalar(select(AuditTrail.id))
    if trail is None:
        raise RuntimeError("the audit trail has no id: run the migrations")
    return Head(0, canonical.genesis(trail))


def links(start: Head, entries: Iterable[Mapping[Any, Any]]) -> Iterator[dict[str, Any]]:
    """The chain rows that append ``entries`` (audit_log rows as stored, with the
    ``committed_at`` of their transaction) after ``start``, in the given order."""
    position, chain_hash = start.position, start.chain_hash
    for entry in entries:
        position += 1
        committed_at = entry["committed_at"] or entry["created_at"]
        entry_hash = canonical.entry_hash(entry)
        chain_hash = canonical.link(chain_hash, position, committed_at, entry_hash)
        yield {
            "position": position,
            "entry_id": entry["id"],
            "entry_created_at": entry["created_at"],
            "committed_at": committed_at,
            "entry_hash": entry_hash,
            "chain_hash": chain_hash,
            "snapshot": None,
            "created_at": utcnow(),
        }


class Sequencer:
    """Assigns positions to committed entries and signs checkpoints when they are due,
    on an engine of its own (a connection at a time), never the requests' pools.

    ``run()`` is the background task of every API process (and of ``auditql audit
    sequencer``); ``sequence()`` is one pass, for tests and the CLI.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        checkpointer: Checkpointer | None,
        *,
        interval: float,
        writer: AsyncEngine | None = None,
    ) -> None:
        """``writer``: ``engine`` for write transactions, where they differ (SQLite's
        take the write lock at BEGIN: ``persistence.engine.writing``)."""
        self._engine = engine
        self._writer = writer or engine
        self._held: AsyncConnection | None = None
        self._checkpointer = checkpointer
        self._interval = interval
        self.passes = 0
        self.sequenced = 0
        self.lag: float | None = None
        """Seconds from the commit of the newest entry the last pass took to that pass."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._release()
        await self._engine.dispose()

    async def _connection(self) -> AsyncConnection:
        """The connection the passes run on, kept between them: a pass every 50 ms
        would otherwise spend more on checking one out, and on setting and resetting
        its isolation level, than on its work."""
        if self._held is None:
            connection = await self._engine.connect()
            self._held = await connection.execution_options(isolation_level="REPEATABLE READ")
        return self._held

    async def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            with contextlib.suppress(Exception):
                await held.close()

    async def run(self) -> None:
        """Passes until cancelled. A failing pass is retried after a pause that doubles up
        to ``_MAX_PAUSE``; a run of failures is logged once, when it starts: a database
        that cannot be reached in one line, one not migrated yet at INFO, anything else
        (a bug) in full; and the recovery at INFO."""
        pause, failing = self._interval, False
        while True:
            try:
                await self.sequence()
            except TrackingOffError as exc:
                logger.error("%s", exc)
                await asyncio.sleep(_TRACKING_OFF_PAUSE)
                continue
            except Exception as exc:
                if not failing:
                    _log_failure(exc)
                failing, pause = True, min(pause * 2, _MAX_PAUSE)
            else:
                if failing:
                    logger.info("audit sequencer resumed")
                failing, pause = False, self._interval
            await asyncio.sleep(pause)

    async def sequence(self) -> int:
        """One pass: the number of entries given positions."""
        if self._engine.dialect.name != "postgresql":
            await self._checkpoint_only()
            self.passes += 1
            return 0
        connection = await self._connection()
        try:
            async with connection.begin():
                made = await self._pass(connection)
        except IntegrityError:
            # Another pass, begun on a snapshot older than ours, won; ours took the
            # same entries. Nothing was written: the next pass starts afresh.
            logger.info("audit sequencer pass lost a race; retrying")
            return 0
        except BaseException:
            await self._release()  # the next pass starts on a new connection
            raise
        self.passes += 1
        self.sequenced += made
        return made

    async def _pass(self, connection: AsyncConnection) -> int:
        # One round trip: the snapshot of this transaction is taken by its first statement.
        found = (await connection.execute(_START, {"key": PASS_LOCK})).one()
        if not found.locked:
            return 0
        if found.tracking != "on":
            raise TrackingOffError
        snapshot = found.snapshot
        if found.position is None:
            start = await head(connection)  # the genesis
        else:
            start = Head(found.position, found.chain_hash, found.previous)
        end = await self._append(connection, start, snapshot) if found.pending else start
        checkpointer = self._checkpointer
        if checkpointer is not None and await checkpointer.due(connection, end.position):
            await checkpointer.make(connection, end.position, end.chain_hash, "interval")
        return end.position - start.position

    async def _append(self, connection: AsyncConnection, start: Head, snapshot: str) -> Head:
        """Link the entries that became visible since ``start``'s snapshot; the new head."""
        if start.position == 0:
            rows = await connection.stream(_ALL)
        elif start.snapshot is None:
            raise RuntimeError(f"audit chain link {start.position} has no snapshot")
        else:
            previous = Snapshot.parse(start.snapshot)
            rows = await connection.stream(
                _NEW_SINCE, {"xmax": previous.xmax, "running": list(previous.running)}
            )
        batch: list[dict[str, Any]] = []
        async for link in _async_links(start, rows):
            batch.append(link)
            if len(batch) > _CHUNK:  # a backlog is appended in batches, not held whole
                await _insert(connection, batch[:-1])
                batch = batch[-1:]
        if not batch:
            return start
        last = batch[-1]
        last["snapshot"] = snapshot  # where the next pass starts
        await _insert(connection, batch)
        # Heard by live updates when this pass commits (persistence.feed).
        await connection.execute(_ANNOUNCE, {"channel": CHANNEL, "head": str(last["position"])})
        self.lag = (last["created_at"] - last["committed_at"]).total_seconds()
        return Head(last["position"], last["chain_hash"])

    async def _checkpoint_only(self) -> None:
        """SQLite chains inline: a pass only signs interval checkpoints, under the write
        lock once one is due (asking takes no lock)."""
        checkpointer = self._checkpointer
        if checkpointer is None:
            return
        async with self._engine.connect() as connection:
            due = await checkpointer.due(connection, (await head(connection)).position)
        if due:
            async with self._writer.begin() as connection:
                end = await head(connection)
                if await checkpointer.due(connection, end.position):
                    await checkpointer.make(connection, end.position, end.chain_hash, "interval")


async def _async_links(start: Head, rows: AsyncResult[Any]) -> AsyncIterator[dict[str, Any]]:
    position, chain_hash = start.position, start.chain_hash
    async for partition in rows.partitions(_CHUNK):
        for link in links(Head(position, chain_hash), (row._mapping for row in partition)):
            position, chain_hash = link["position"], link["chain_hash"]
            yield link


async def _insert(connection: AsyncConnection, made: list[dict[str, Any]]) -> None:
    with auditing():
        await connection.execute(_CHAIN.insert(), made)


async def positions_of(connection: AsyncConnection, entry_ids: Sequence[UUID]) -> dict[UUID, int]:
    """The positions of the given entries that have one."""
    rows = await connection.execute(
        select(_CHAIN.c.entry_id, _CHAIN.c.position).where(_CHAIN.c.entry_id.in_(entry_ids))
    )
    return {entry_id: position for entry_id, position in rows}


def note_entries(session: Session, entries: Sequence[Mapping[str, Any]]) -> None:
    """Remember the entries a SQLite unit of work wrote, for :func:`append_pending`."""
    if session.get_bind().dialect.name == "sqlite":
        session.info.setdefault(PENDING, []).extend(entry["id"] for entry in entries)


def append_pending(session: Session) -> None:
    """SQLite, just before COMMIT: chain the entries this unit of work wrote, read back
    as stored, in the order written. Writers hold the write lock from BEGIN to COMMIT,
    so this order is commit order. The first unit of work on a trail without a chain
    chains the entries written before it first, in the order they were created."""
    pending: list[UUID] = session.info.pop(PENDING, [])
    if not pending:
        return
    session.info[CHAINED] = True
    connection = session.connection()
    start = _head(connection)
    order = {entry_id: index for index, entry_id in enumerate(pending)}
    if start.position == 0:
        rows = list(
            connection.execute(select(*ENTRY_COLUMNS).order_by(_LOG.c.created_at, _LOG.c.id))
        )
        rows.sort(key=lambda row: (row.id in order, order.get(row.id, 0)))
    else:
        rows = []
        for first in range(0, len(pending), _CHUNK):
            chunk = pending[first : first + _CHUNK]
            rows.extend(connection.execute(select(*ENTRY_COLUMNS).where(_LOG.c.id.in_(chunk))))
        rows.sort(key=lambda row: order[row.id])
    committed_at = utcnow()
    entries = (
        {**row._mapping, "committed_at": committed_at if row.id in order else None} for row in rows
    )  # an entry written before the chain began counts as committed when created
    with auditing():
        connection.execute(_CHAIN.insert(), list(links(start, entries)))
