"""Running the audit sequencer and the verifier against a test's database."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

import asyncpg
from sqlalchemy import Uuid, bindparam, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from persistence import migrations
from persistence.base import UTCDateTime
from persistence.chain import PASS_LOCK, positions_of
from persistence.engine import Database
from persistence.integrity import sequencer_of, trusted_keys_of
from persistence.models.audit_chain import AuditChainLink
from persistence.settings import DatabaseSettings
from persistence.verification import Report, verify
from persistence.write_guard import auditing


async def sequence(settings: DatabaseSettings) -> None:
    """One sequencer pass, as the API's background task runs it, with every pass in
    flight committed before and after it. A server under test runs its own passes: one
    in flight would keep ours from linking anything, and one that starts between the
    wait and our pass would win the lock instead of ours. Either way, once the lock is
    free again after our pass, whichever pass linked the entries has committed."""
    await _passes_done(settings)
    async with sequencer_of(settings) as sequencer:
        await sequencer.sequence()
    await _passes_done(settings)


async def _passes_done(settings: DatabaseSettings) -> None:
    """Returns once no sequencer pass holds the pass lock (PostgreSQL)."""
    if settings.is_sqlite:
        return
    engine = create_async_engine(settings.database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PASS_LOCK})
    finally:
        await engine.dispose()


async def verified(
    database: Database,
    settings: DatabaseSettings,
    *,
    first: int | None = None,
    last: int | None = None,
    external: Iterable[tuple[bytes, bytes]] = (),
) -> Report:
    async with database.engine.connect() as connection:
        return await verify(
            connection, trusted_keys_of(settings), first=first, last=last, external=external
        )


async def positions(database: Database, entry_ids: Iterable[object]) -> list[int | None]:
    """The chain positions of the given audit entries, None for one without."""
    ids = list(entry_ids)
    async with database.engine.connect() as connection:
        found = await positions_of(connection, ids)  # type: ignore[arg-type]
    return [found.get(entry_id) for entry_id in ids]  # type: ignore[call-overload]


async def chain_length(database: Database) -> int:
    async with database.engine.connect() as connection:
        return len((await connection.execute(select(AuditChainLink.position))).all())


_APPEND_ONLY = ("audit_log", "audit_chain", "audit_checkpoint")


async def as_owner(database_url: str, *statements: str) -> None:
    """``statements`` as the database's owner would run them to tamper with the trail:
    with the append-only triggers out of the way (and back in place after, on
    PostgreSQL, as a careful intruder leaves them)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        with contextlib.closing(sqlite3.connect(str(url.database))) as lite:
            for table in _APPEND_ONLY:
                for action in ("update", "delete"):
                    lite.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
            for statement in statements:
                lite.execute(statement)
            lite.commit()
        return
    owner = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
    try:
        async with owner.transaction():
            for table in _APPEND_ONLY:
                await owner.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            for statement in statements:
                await owner.execute(statement)
            for table in _APPEND_ONLY:
                await owner.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    finally:
        await owner.close()


BEFORE_THE_CHAIN = "5004ee7f32cf"
"""The last revision before audit entries were chained."""


async def upgraded_with_entries(database: Database, created: list[datetime]) -> None:
    """Migrate ``database`` (empty) to the revision before the chain, write entries
    created at ``created`` as that release wrote them (entry ``n`` has id ``UUID(int=n)``,
    from 1), then migrate to the head: an installation upgraded with a log."""
    await migrations.run(database.engine, "upgrade", BEFORE_THE_CHAIN)
    insert = text(
        "INSERT INTO audit_log (id, created_at, action, entity_type, entity_id, changes)"
        " VALUES (:id, :at, 'create', 'tags', 'old', '{}')"
    ).bindparams(bindparam("id", type_=Uuid()), bindparam("at", type_=UTCDateTime()))
    async with database.engine.begin() as connection:
        for n, at in enumerate(created, 1):
            with auditing():
                await connection.execute(insert, {"id": UUID(int=n), "at": at})
    await migrations.run(database.engine, "upgrade", "head")
