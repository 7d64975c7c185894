from __future__ import annotations

from typing import Any

import pytest

from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.errors import AlreadyExistsError
from persistence.models import User
from persistence.repositories.user import UserRepository
from persistence.unit_of_work import UnitOfWork
from tests.factories.user import create_user


@pytest.fixture
async def people(database: Database) -> list[User]:
    async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
        people: list[dict[str, Any]] = [
            {"email": "Ada@Example.com", "username": "Ada", "full_name": "Ada Lovelace"},
            {"email": "grace@example.com", "username": "grace", "full_name": "Grace Hopper",
             "is_superuser": True},
            {"email": "off@example.com", "username": "off_50%", "full_name": "Dormant",
             "is_active": False},
        ]  # fmt: skip
        return [await create_user(uow, **person) for person in people]


async def test_lookups_are_case_insensitive(database: Database, people: list[User]) -> None:
    async with database.reader() as session:
        users = UserRepository(session)
        assert people[0].email == "ada@example.com"  # stored lower-case
        found = await users.find_by_email("  ADA@example.COM ")
        assert found is not None
        assert found.id == people[0].id
        found = await users.get_one_by(UserRepository.named("aDA"))
        assert found is not None
        assert found.id == people[0].id
        assert await users.get_one_by(UserRepository.named("nobody")) is None


async def test_email_and_username_are_unique_case_insensitively(
    database: Database, people: list[User]
) -> None:
    for duplicate, field in (
        ({"email": "ADA@example.com", "username": "ada2"}, "email"),
        ({"email": "ada2@example.com", "username": "ADA"}, "username"),
    ):
        with pytest.raises(AlreadyExistsError) as caught:
            async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
                await UserRepository(uow.session).add(User(**duplicate))
        assert caught.value.field == field
