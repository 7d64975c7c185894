"""Commit-ordered positions on PostgreSQL: writers of unrelated rows never wait on each
other for the chain, a later commit gets a later position whatever ids it holds, and
sequencers racing each other neither duplicate nor skip a position."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from uuid import UUID

import pytest
from sqlalchemy import text

from gql.settings import Settings
from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.integrity import sequencer_of
from persistence.models import Tag
from persistence.unit_of_work import UnitOfWork
from tests.factories.tag import create_tag
from tests.support.audit import audit_entries
from tests.support.audit_chain import positions, sequence, verified

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

WRITERS = 50
SYSTEM = AuditContext(actor_id=None)
# Backends of this database waiting for a lock, and how many. Not counted: waits to
# extend a table's file, which concurrent inserts into one table take turns at.
WAITING = text(
    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE NOT l.granted AND l.locktype <> 'extend' AND a.datname = current_database()"
)


@pytest.fixture
async def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, audit_sequencer=False, db_pool_size=WRITERS + 5)


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    database = Database.from_settings(settings)
    yield database
    await database.dispose()


async def _entry_of(database: Database, tag: Tag) -> UUID:
    [entry] = await audit_entries(database, tag.id)
    return entry.id


@contextlib.asynccontextmanager
async def _sampling_lock_waits(database: Database) -> AsyncIterator[list[int]]:
    """Every few milliseconds, how many backends wait for a lock."""
    samples: list[int] = []

    async def sample() -> None:
        async with database.engine.connect() as connection:
            while True:
                samples.append(int(await connection.scalar(WAITING) or 0))
                await connection.rollback()
                await asyncio.sleep(0.005)

    task = asyncio.create_task(sample())
    try:
        yield samples
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def _sequencing(settings: Settings) -> AsyncIterator[None]:
    """The sequencer running in the background, as in an API process."""
    async with sequencer_of(settings.model_copy(update={"audit_sequence_interval_ms": 10})) as s:
        task = asyncio.create_task(s.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _held_open_while(
    database: Database,
    during: Callable[[], Awaitable[object]],
    *,
    lock_shared_row: bool = False,
) -> Tag:
    """A unit of work that writes a tag and stays open while ``during`` runs."""
    release = asyncio.Event()
    started = asyncio.Event()
    holder: list[Tag] = []

    async def hold() -> None:
        async with UnitOfWork(database, SYSTEM) as uow:
            holder.append(await create_tag(uow))
            if lock_shared_row:
                await uow.session.execute(text("SELECT 1 FROM audit_trail FOR UPDATE"))
            started.set()
            await release.wait()

    task = asyncio.create_task(hold())
    await started.wait()
    try:
        await during()
    finally:
        release.set()
        await task
    return holder[0]


async def _write_tags(database: Database, *, lock_shared_row: bool = False) -> list[Tag]:
    async def one() -> Tag:
        async with UnitOfWork(database, SYSTEM) as uow:
            if lock_shared_row:
                await uow.session.execute(text("SELECT 1 FROM audit_trail FOR UPDATE"))
            return await create_tag(uow)

    return list(await asyncio.gather(*(one() for _ in range(WRITERS))))


async def _until_sequenced(database: Database, entries: list[UUID]) -> list[int | None]:
    for _ in range(500):
        found = await positions(database, entries)
        if None not in found:
            return found
        await asyncio.sleep(0.01)
    return await positions(database, entries)


async def test_unrelated_writers_never_wait_and_get_positions_while_one_stays_open(
    database: Database, settings: Settings
) -> None:
    written: list[Tag] = []
    sequenced_while_open: list[int] = []

    async def others() -> None:
        written.extend(await _write_tags(database))
        entries = [await _entry_of(database, tag) for tag in written]
        found = await _until_sequenced(database, entries)
        assert None not in found  # all fifty sequenced before the holder ended
        sequenced_while_open.extend(p for p in found if p is not None)

    async with _sequencing(settings), _sampling_lock_waits(database) as waits:
        held = await _held_open_while(database, others)
        held_entry = await _entry_of(database, held)
        [held_position] = await _until_sequenced(database, [held_entry])

    assert len(waits) > 10
    assert max(waits) == 0
    assert len(sequenced_while_open) == WRITERS
    assert held_position is not None
    assert held_position > max(sequenced_while_open)
    assert (await verified(database, settings)).ok


async def test_the_lock_sampler_sees_writers_that_do_serialise(
    database: Database, settings: Settings
) -> None:
    """The negative control: the same writers behind one shared row lock are seen
    waiting, so the test above would fail if the chain serialised them."""
    blocked: list[asyncio.Task[list[Tag]]] = []
    async with _sampling_lock_waits(database) as waits:

        async def others() -> None:
            blocked.append(asyncio.create_task(_write_tags(database, lock_shared_row=True)))
            for _ in range(1000):  # until the sampler sees them queue behind the holder
                if any(waits):
                    return
                await asyncio.sleep(0.01)

        await _held_open_while(database, others, lock_shared_row=True)
        await blocked[0]
    assert max(waits) > 0


@pytest.mark.parametrize("pass_between", [False, True], ids=["one-pass", "pass-between"])
async def test_a_later_commit_gets_a_later_position_whatever_its_ids(
    database: Database, settings: Settings, pass_between: bool
) -> None:
    """T1 writes first (the older entry id and transaction id), T2 second; T2 commits
    first. T2's entry must come first in the chain, in one pass or across two."""
    t1_wrote, t2_committed = asyncio.Event(), asyncio.Event()
    made: dict[str, Tag] = {}

    async def t1() -> None:
        async with UnitOfWork(database, SYSTEM) as uow:
            made["t1"] = await create_tag(uow)
            t1_wrote.set()
            await t2_committed.wait()
            if pass_between:
                await sequence(settings)  # T2 is visible, T1 still running

    async def t2() -> None:
        await t1_wrote.wait()
        async with UnitOfWork(database, SYSTEM) as uow:
            made["t2"] = await create_tag(uow)
        t2_committed.set()

    await asyncio.gather(t1(), t2())
    await sequence(settings)
    first, second = await _entry_of(database, made["t1"]), await _entry_of(database, made["t2"])
    assert first < second  # UUIDv7: T1's entry id is the older
    t1_position, t2_position = await positions(database, [first, second])
    assert t1_position is not None
    assert t2_position is not None
    assert t2_position < t1_position


async def test_racing_sequencers_neither_duplicate_nor_skip(
    database: Database, settings: Settings
) -> None:
    stop = asyncio.Event()

    async def sequencing() -> None:
        async with sequencer_of(settings) as sequencer:
            while not stop.is_set():
                await sequencer.sequence()

    racers = [asyncio.create_task(sequencing()) for _ in range(3)]
    try:
        for _ in range(4):
            await _write_tags(database)
    finally:
        stop.set()
        await asyncio.gather(*racers)
    await sequence(settings)

    entries = [entry.id for entry in await audit_entries(database)]
    found = await positions(database, entries)
    assert sorted(found) == list(range(1, len(entries) + 1))  # type: ignore[type-var]
    assert (await verified(database, settings)).ok
