"""People to act as, for the domain's commands: an author, another user, a superuser."""

from __future__ import annotations

import pytest

from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.models import User
from persistence.unit_of_work import UnitOfWork
from tests.factories.user import create_user

SYSTEM = AuditContext(actor_id=None)


def as_(database: Database, actor: User | None) -> UnitOfWork:
    return UnitOfWork(database, AuditContext(actor_id=actor.id if actor else None))


@pytest.fixture
async def author(database: Database) -> User:
    async with UnitOfWork(database, SYSTEM) as uow:
        return await create_user(uow, username="author")


@pytest.fixture
async def stranger(database: Database) -> User:
    async with UnitOfWork(database, SYSTEM) as uow:
        return await create_user(uow, username="stranger")


@pytest.fixture
async def root(database: Database) -> User:
    async with UnitOfWork(database, SYSTEM) as uow:
        return await create_user(uow, username="root", is_superuser=True)
