"""No silent write: every way of writing, through every kind of session, on both
databases, ends in an audit entry for each changed row or in a refusal that changed
nothing. Units of work audit what their session flushes and what ``add_many`` inserts
and refuse any other write to a model's table; read sessions cannot write at all,
because their connections are read-only in the database itself."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from persistence import migrations
from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.models import AuditLog, Tag
from persistence.repositories.tag import TagRepository
from persistence.settings import DatabaseSettings
from persistence.unit_of_work import UnitOfWork
from tests.conftest import backend_url

SYSTEM = AuditContext(actor_id=None)
_colors = itertools.count(0x100)
Write = Callable[[AsyncSession], Awaitable[Any]]


def _upsert(session: AsyncSession) -> Any:
    assert session.bind is not None
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(Tag).values(name="kept", color="#000000", version=1)
    return stmt.on_conflict_do_update(index_elements=[Tag.id], set_={"color": "#ffffff"})


async def _orm_add(session: AsyncSession) -> None:
    session.add(Tag(name="orm", color="#010101"))
    await session.flush()


async def _orm_change(session: AsyncSession) -> None:
    tag = (await session.scalars(select(Tag).where(Tag.name == "kept"))).one()
    tag.color = f"#{next(_colors):06x}"  # a new one each time: always a change
    await session.flush()


async def _add_many(session: AsyncSession) -> None:
    await TagRepository(session).add_many([Tag(name="many-1"), Tag(name="many-2")])


async def _driver_sql(session: AsyncSession) -> None:
    connection = await session.connection()
    await connection.exec_driver_sql("DELETE FROM tags")


async def _on_the_connection(session: AsyncSession) -> None:
    connection = await session.connection()
    await connection.execute(update(Tag).values(color="#070707"))


WRITES: dict[str, Write] = {
    "orm add": _orm_add,
    "orm change": _orm_change,
    "add_many": _add_many,
    "core insert": lambda s: s.execute(insert(Tag).values(name="core", color="#030303")),
    "core update": lambda s: s.execute(update(Tag).values(color="#040404")),
    "core delete": lambda s: s.execute(delete(Tag)),
    "core on the connection": _on_the_connection,
    "orm bulk insert": lambda s: s.execute(insert(Tag), [{"name": "bulk", "color": "#050505"}]),
    "upsert": lambda s: s.execute(_upsert(s)),
    "textual update": lambda s: s.execute(text("UPDATE tags SET color = '#060606'")),
    "textual cte": lambda s: s.execute(
        text('WITH gone AS (DELETE FROM public."tags" RETURNING id) SELECT count(*) FROM gone')
    ),
    "textual lower case": lambda s: s.execute(text("delete  from\n tags /* all */")),
    "driver sql": _driver_sql,
    "forged audit entry": lambda s: s.execute(
        insert(AuditLog).values(action="create", entity_type="tags", entity_id="x", changes={})
    ),
}

AUDITED = {"orm add", "orm change", "add_many"}  # the unit of work's own ways


@pytest.fixture(scope="module")
async def database(request: pytest.FixtureRequest, backend: str) -> AsyncIterator[Database]:
    url = backend_url(request, backend, "write_guard")
    database = Database.from_settings(DatabaseSettings(database_url=url))
    await migrations.run(database.engine, "upgrade", "head")
    async with UnitOfWork(database, SYSTEM) as uow:
        await TagRepository(uow.session).add(Tag(name="kept", color="#336699"))
    yield database
    await database.dispose()


async def state(database: Database) -> tuple[dict[str, str], int]:
    """Each tag's colour by name, and how many audit entries there are."""
    async with database.reader() as session:
        tags = {name: color for name, color in await session.execute(select(Tag.name, Tag.color))}
        entries = await session.scalar(select(func.count()).select_from(AuditLog))
    return tags, entries or 0


@pytest.mark.parametrize("session_kind", ["unit of work", "reader"])
@pytest.mark.parametrize("write", sorted(WRITES))
async def test_a_write_is_audited_or_refused_never_silent(
    database: Database, write: str, session_kind: str
) -> None:
    before_tags, before_entries = await state(database)
    refused: BaseException | None = None
    try:
        if session_kind == "unit of work":
            async with UnitOfWork(database, SYSTEM) as uow:
                await WRITES[write](uow.session)
        else:
            async with database.reader() as session:
                await WRITES[write](session)
                await session.commit()
    except Exception as exc:  # a refusal, whichever layer refused
        refused = exc
    after_tags, after_entries = await state(database)

    if session_kind == "unit of work" and write in AUDITED:
        assert refused is None, refused
        changed = sum(before_tags.get(name) != color for name, color in after_tags.items())
        assert changed >= 1
        assert after_entries - before_entries == changed  # one entry per changed row
    else:
        assert refused is not None, f"{write} through a {session_kind} wrote silently"
        assert (after_tags, after_entries) == (before_tags, before_entries)
