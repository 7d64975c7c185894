"""New rows held until their transaction needs them, and many rows by COPY (PostgreSQL,
``persistence.held`` and ``persistence.copy``), on a database of the module's own whose
units of work really commit (the savepoint harness would begin the transaction first).

What is held is sent before the next statement of its transaction and at COMMIT,
never after a rollback; COPY runs inside the unit of work's transaction, fails as an
INSERT does, and writes the rows and entries an INSERT would.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from persistence import migrations
from persistence.audit import AuditContext
from persistence.copy import COPY_FROM
from persistence.engine import Database
from persistence.errors import AlreadyExistsError
from persistence.models import AuditLog, Post
from persistence.repositories.post import PostRepository
from persistence.settings import DatabaseSettings
from persistence.unit_of_work import UnitOfWork
from tests.conftest import backend_url
from tests.factories.user import create_user
from tests.support.statements import count_statements

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

_labels = itertools.count()


class RolledBackError(Exception):
    """Raised in a unit of work to roll it back."""


@pytest.fixture(scope="module")
async def committing(request: pytest.FixtureRequest, backend: str) -> AsyncIterator[Database]:
    url = backend_url(request, backend, "auditql_held")
    database = Database.from_settings(DatabaseSettings(database_url=url))
    await migrations.run(database.engine, "upgrade", "head")
    yield database
    await database.dispose()


@pytest.fixture
async def author(committing: Database) -> int:
    async with UnitOfWork(committing, AuditContext(actor_id=None)) as uow:
        return (await create_user(uow)).id


def posts(label: str, count: int) -> list[Post]:
    return [Post(title=f"{label} {n}", slug=f"{label}-{n}", body="Held.") for n in range(count)]


async def stored(database: Database, label: str) -> tuple[int, int]:
    """Posts whose slug starts with ``label``, and audit entries about them."""
    async with database.reader() as session:
        ids = (await session.scalars(select(Post.id).where(Post.slug.startswith(label)))).all()
        about = AuditLog.entity_id.in_([str(i) for i in ids])
        entries = await session.scalar(select(func.count()).select_from(AuditLog).where(about))
    return len(ids), entries or 0


@pytest.mark.parametrize("count", [1, COPY_FROM])
async def test_held_rows_are_there_for_the_next_statement(
    committing: Database, author: int, count: int
) -> None:
    label = f"next-{next(_labels)}"
    async with UnitOfWork(committing, AuditContext(actor_id=author)) as uow:
        await PostRepository(uow.session).add_many(posts(label, count))
        seen = await uow.session.scalar(
            select(func.count()).select_from(Post).where(Post.slug.startswith(label))
        )
    assert seen == count
    assert await stored(committing, label) == (count, count)


@pytest.mark.parametrize("count", [1, COPY_FROM])
async def test_a_rolled_back_unit_of_work_leaves_nothing(
    committing: Database, author: int, count: int
) -> None:
    label = f"rolled-{next(_labels)}"
    with count_statements(committing) as statements, pytest.raises(RolledBackError):
        async with UnitOfWork(committing, AuditContext(actor_id=author)) as uow:
            await PostRepository(uow.session).add_many(posts(label, count))
            raise RolledBackError
    assert not [s for s in statements if "INSERT" in s]  # held, then dropped unsent
    assert await stored(committing, label) == (0, 0)


async def test_copied_rows_roll_back_with_their_transaction(
    committing: Database, author: int
) -> None:
    # Sent by COPY before the SELECT: if the COPY ran outside the transaction, the
    # rows would outlive the rollback.
    label = f"copied-{next(_labels)}"
    with pytest.raises(RolledBackError):
        async with UnitOfWork(committing, AuditContext(actor_id=author)) as uow:
            await PostRepository(uow.session).add_many(posts(label, COPY_FROM))
            seen = await uow.session.scalar(select(func.count()).select_from(Post))
            assert seen is not None
            assert seen >= COPY_FROM
            raise RolledBackError
    assert await stored(committing, label) == (0, 0)


@pytest.mark.parametrize("count", [1, COPY_FROM])
async def test_a_duplicate_is_already_exists_and_nothing_is_written(
    committing: Database, author: int, count: int
) -> None:
    label = f"duplicate-{next(_labels)}"
    async with UnitOfWork(committing, AuditContext(actor_id=author)) as uow:
        await PostRepository(uow.session).add(Post(title="Taken", slug=f"{label}-taken"))
    many = posts(label, count)
    many[-1].slug = f"{label}-taken"
    with pytest.raises(AlreadyExistsError) as raised:
        async with UnitOfWork(committing, AuditContext(actor_id=author)) as uow:
            await PostRepository(uow.session).add_many(many)
    assert raised.value.field == "slug"
    assert await stored(committing, label) == (1, 1)


async def test_copied_rows_and_entries_read_back_as_inserted_ones(
    committing: Database, author: int
) -> None:
    label = f"same-{next(_labels)}"
    async with UnitOfWork(committing, AuditContext(actor_id=author, request_id="r1")) as uow:
        repository = PostRepository(uow.session)
        copied = await repository.add_many(posts(f"{label}-copy", COPY_FROM))
        inserted = await repository.add_many(posts(f"{label}-insert", 2))
    first_copied = await _read(committing, copied[0].id)
    first_inserted = await _read(committing, inserted[0].id)
    assert _without_names(first_copied) == _without_names(first_inserted)


async def _read(database: Database, post_id: Any) -> dict[str, Any]:
    async with database.reader() as session:
        post = await session.get(Post, post_id)
        about = select(AuditLog).where(AuditLog.entity_id == str(post_id))
        entry = (await session.scalars(about)).one()
    assert post is not None
    return {
        "post": {k: v for k, v in vars(post).items() if not k.startswith("_")},
        "entry": {k: v for k, v in vars(entry).items() if not k.startswith("_")},
    }


_POST_NAMES = frozenset({"id", "title", "slug", "created_at", "updated_at"})
_ENTRY_NAMES = frozenset({"id", "entity_id", "created_at"})


def _without_names(read: dict[str, Any]) -> dict[str, Any]:
    """What differs between any two posts of one unit of work taken out."""
    post = {k: v for k, v in read["post"].items() if k not in _POST_NAMES}
    entry = {k: v for k, v in read["entry"].items() if k not in _ENTRY_NAMES}
    entry["changes"] = {k: v for k, v in entry["changes"].items() if k not in ("title", "slug")}
    return {"post": post, "entry": entry}
