"""Users: who may create and change them, and the rules their fields follow (the
password policy among them)."""

from __future__ import annotations

import asyncio

from domain.rules import bounded_text, require_superuser
from persistence.errors import ForbiddenError, ValidationError
from persistence.models import User
from persistence.repositories.user import UserRepository
from persistence.security import hash_password
from persistence.unit_of_work import UnitOfWork
from persistence.validation import text_problem

MIN_PASSWORD = 12
MAX_PASSWORD = 1024


def valid_email(value: str) -> str:
    """The address, stored lower-case."""
    address = value.strip().lower()
    local, at, domain_part = address.partition("@")
    if not (local and at and "." in domain_part) or len(address) > 320 or " " in address:
        raise ValidationError("email", "email is not a valid address.")
    return address


def valid_username(value: str) -> str:
    return bounded_text(value, "username", max_length=50)


def valid_full_name(value: str) -> str:
    return bounded_text(value, "full_name", max_length=200, min_length=0)


async def password_hash(password: str) -> str:
    """The argon2id hash of a password the policy accepts."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValidationError(
            "password", f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters."
        )
    # Only its hash is stored, so the row checks never see it; argon2 hashes UTF-8.
    if (problem := text_problem(password)) is not None:
        raise ValidationError("password", f"password {problem}.")
    # argon2id spends ~50 ms of CPU by design: keep it off the event loop.
    return await asyncio.to_thread(hash_password, password)


async def create_user(
    uow: UnitOfWork,
    actor: User | None,
    *,
    email: str,
    username: str,
    full_name: str = "",
    password: str | None = None,
    is_superuser: bool = False,
) -> User:
    """A new user (superusers, or the system); without a password they sign in by
    token only."""
    require_superuser(actor)
    user = User(
        email=valid_email(email),
        username=valid_username(username),
        full_name=valid_full_name(full_name),
        password_hash=await password_hash(password) if password is not None else None,
        is_superuser=is_superuser,
    )
    return await UserRepository(uow.session).add(user)


async def update_user(
    uow: UnitOfWork,
    actor: User,
    user_id: int,
    *,
    email: str | None = None,
    username: str | None = None,
    full_name: str | None = None,
    password: str | None = None,
    is_superuser: bool | None = None,
    expected_version: int | None = None,
) -> User:
    """Superusers change anything; users change their own full name and password."""
    users = UserRepository(uow.session)
    user = await users.get_or_raise(user_id, for_update=True)
    admin_only = (email, username, is_superuser)
    if not actor.is_superuser and (user.id != actor.id or any(v is not None for v in admin_only)):
        raise ForbiddenError("Only superusers can change this.")
    values: dict[str, object] = {}
    if email is not None:
        values["email"] = valid_email(email)
    if username is not None:
        values["username"] = valid_username(username)
    if full_name is not None:
        values["full_name"] = valid_full_name(full_name)
    if password is not None:
        values["password_hash"] = await password_hash(password)
    if is_superuser is not None:
        values["is_superuser"] = is_superuser
    return await users.update(user, values, expected_version=expected_version)


async def deactivate_user(
    uow: UnitOfWork, actor: User, user_id: int, *, expected_version: int | None = None
) -> User:
    """The user can no longer sign in, and their tokens stop working at once
    (superusers; not themselves)."""
    require_superuser(actor)
    users = UserRepository(uow.session)
    user = await users.get_or_raise(user_id, for_update=True)
    if user.id == actor.id:
        raise ValidationError("id", "You cannot deactivate yourself.")
    return await users.update(user, {"is_active": False}, expected_version=expected_version)
