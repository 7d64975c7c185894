"""The type map: naive datetimes are refused before they reach the database."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from persistence.audit import AuditContext
from persistence.base import NaiveDatetimeError
from persistence.engine import Database
from persistence.errors import ValidationError
from persistence.models import Post, PostStatus
from persistence.repositories.post import PostRepository
from persistence.unit_of_work import UnitOfWork
from tests.factories.post import create_post


async def test_naive_datetimes_are_rejected_and_nothing_is_written(database: Database) -> None:
    with pytest.raises(ValidationError) as caught:
        async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
            await create_post(
                uow, slug="naive", status=PostStatus.PUBLISHED, published_at=datetime(2026, 1, 1)
            )
    assert caught.value.field == "published_at"
    async with database.reader() as session:
        assert await PostRepository(session).find_by_slug("naive") is None


async def test_the_column_type_refuses_naive_datetimes_in_any_statement(
    database: Database,
) -> None:
    async with database.reader() as session:
        with pytest.raises(StatementError) as caught:
            await session.scalars(select(Post).where(Post.created_at < datetime(2026, 1, 1)))
    assert isinstance(caught.value.orig, NaiveDatetimeError)
