"""The rules of users and tokens, at the level the API and the command line share:
domain commands in a unit of work, without GraphQL."""

from __future__ import annotations

import pytest

from domain import tokens, users
from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.errors import ForbiddenError, ValidationError
from persistence.models import User
from persistence.security import verify_password
from persistence.unit_of_work import UnitOfWork

SYSTEM = AuditContext(actor_id=None)


async def create(database: Database, actor: User | None = None, /, **values: object) -> User:
    fields = {"email": "Ada@Example.com ", "username": "ada", **values}
    async with UnitOfWork(database, SYSTEM) as uow:
        return await users.create_user(uow, actor, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("abc", "password must be 12 to 1024 characters."),
        ("x" * 1025, "password must be 12 to 1024 characters."),
        ("twelve chars\x00", "password must not contain NUL characters."),
        ("twelve chars\ud800", "password must be valid Unicode text (no lone surrogates)."),
    ],
)
async def test_the_password_policy(database: Database, password: str, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        await create(database, password=password)
    assert (refused.value.field, refused.value.message) == ("password", message)


async def test_a_user_is_stored_normalised_with_a_hash_only(database: Database) -> None:
    user = await create(database, password="correct horse battery", full_name="  Ada L. ")
    assert (user.email, user.full_name) == ("ada@example.com", "Ada L.")
    assert user.password_hash is not None
    assert "correct" not in user.password_hash
    assert verify_password(user.password_hash, "correct horse battery")


@pytest.mark.parametrize(
    ("values", "field"),
    [({"email": "not-an-address"}, "email"), ({"username": " "}, "username"),
     ({"username": "x" * 51}, "username"), ({"full_name": "x" * 201}, "full_name")],
)  # fmt: skip
async def test_fields_follow_their_rules(
    database: Database, values: dict[str, str], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        await create(database, **values)
    assert refused.value.field == field


async def test_only_superusers_and_the_system_create_users(database: Database) -> None:
    ada = await create(database)
    with pytest.raises(ForbiddenError):
        await create(database, ada, email="bob@example.com", username="bob")
    root = await create(database, email="root@example.com", username="root", is_superuser=True)
    bob = await create(database, root, email="bob@example.com", username="bob")
    assert bob.id != ada.id


async def test_users_change_only_their_name_and_password_and_cannot_deactivate(
    database: Database,
) -> None:
    ada = await create(database)
    async with UnitOfWork(database, SYSTEM) as uow:
        changed = await users.update_user(uow, ada, ada.id, full_name="Ada")
    assert changed.full_name == "Ada"
    with pytest.raises(ForbiddenError):
        async with UnitOfWork(database, SYSTEM) as uow:
            await users.update_user(uow, ada, ada.id, is_superuser=True)
    with pytest.raises(ForbiddenError):
        async with UnitOfWork(database, SYSTEM) as uow:
            await users.deactivate_user(uow, ada, ada.id)


async def test_tokens_live_one_to_365_days_and_have_a_name(database: Database) -> None:
    ada = await create(database)
    for days, name, field in ((0, "ci", "expires_in_days"), (366, "ci", "expires_in_days"),
                              (None, " ", "name")):  # fmt: skip
        with pytest.raises(ValidationError) as refused:
            async with UnitOfWork(database, SYSTEM) as uow:
                await tokens.issue_token(uow, ada, name, days)
        assert refused.value.field == field
    async with UnitOfWork(database, SYSTEM) as uow:
        secret, stored = await tokens.issue_token(uow, ada, " ci ", 365)
    assert secret.startswith("aq_")
    assert (stored.name, stored.expires_at is not None) == ("ci", True)
