"""Signing in and API tokens: who a token or a password stands for, issuing a token,
revoking one. A deactivated user's tokens and password stop working at once.

An invalid, expired or revoked token, or one whose user is deactivated, is refused
alike, so a caller learns nothing about which it was. Tokens are looked up by their
SHA-256; the secret itself is never compared, logged or stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import timedelta
from uuid import UUID

from domain.rules import bounded_text
from domain.token_cache import TokenCache
from persistence.audit import AuditContext
from persistence.base import utcnow
from persistence.engine import Database
from persistence.errors import ValidationError
from persistence.models import ApiToken, User
from persistence.repositories.api_token import ApiTokenRepository, ValidToken
from persistence.repositories.user import UserRepository
from persistence.security import hash_token, new_token, verify_password
from persistence.unit_of_work import UnitOfWork

MAX_TOKEN_DAYS = 365
# last_used_at is bookkeeping: writing it on every request would turn each read into
# a write, so it is refreshed at most this often per token.
LAST_USED_RESOLUTION = timedelta(minutes=5)


async def user_of(database: Database, secret: str) -> User | None:
    """The active user ``secret`` is a valid token of; None if it is no such token."""
    found = await token_of(database, secret)
    return None if found is None else found.user


async def token_of(
    database: Database, secret: str, cache: TokenCache | None = None
) -> ValidToken | None:
    """The valid token ``secret`` is, with its active user; None if it is no such token.
    Its use is noted (``last_used_at``, to :data:`LAST_USED_RESOLUTION`). With a
    ``cache``, a token read within its time is not read again (:mod:`domain.token_cache`)."""
    now, token_hash = utcnow(), hash_token(secret)
    if cache is not None and (cached := cache.get(token_hash, now)) is not None:
        return cached
    async with database.reader() as session:
        found = await ApiTokenRepository(session).find_valid(token_hash, now)
    if found is None:
        return None
    if found.last_used_at is None or now - found.last_used_at > LAST_USED_RESOLUTION:
        async with UnitOfWork(database, AuditContext(actor_id=found.user.id)) as uow:
            tokens = ApiTokenRepository(uow.session)
            await tokens.update(await tokens.get_or_raise(found.token_id), {"last_used_at": now})
        found = found._replace(last_used_at=now)
    if cache is None:
        return found
    cache.put(token_hash, found)
    return found.copied()


async def still_valid(database: Database, token_ids: Collection[UUID]) -> dict[UUID, User]:
    """Of these tokens, those still valid, with their users as they are now."""
    async with database.reader() as session:
        return await ApiTokenRepository(session).still_valid(token_ids, utcnow())


async def check_credentials(database: Database, email: str, password: str) -> User | None:
    """The active user with this email and password; None otherwise, after the same
    work (one argon2 verification) whatever the reason."""
    async with database.reader() as session:
        user = await UserRepository(session).find_by_email(email)
    stored_hash = user.password_hash if user is not None else None
    # argon2id spends ~50 ms of CPU by design: keep it off the event loop.
    matches = await asyncio.to_thread(verify_password, stored_hash, password)
    return user if user is not None and matches and user.is_active else None


async def issue_token(
    uow: UnitOfWork, user: User, name: str, expires_in_days: int | None
) -> tuple[str, ApiToken]:
    """A new token for ``user``: its secret (shown once, never stored) and its row.
    Without ``expires_in_days`` it never expires."""
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
        raise ValidationError("expires_in_days", f"A token lives 1 to {MAX_TOKEN_DAYS} days.")
    token = new_token()
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    stored = await ApiTokenRepository(uow.session).add(
        ApiToken(
            user_id=user.id,
            name=bounded_text(name, "name", max_length=100),
            token_hash=token.hash,
            prefix=token.prefix,
            expires_at=expires_at,
        )
    )
    return token.secret, stored


async def revoke_token(uow: UnitOfWork, actor: User, token_id: UUID) -> ApiToken:
    """Revoke one of the actor's own tokens; it stops working at once. Idempotent."""
    tokens = ApiTokenRepository(uow.session)
    token = await tokens.get_or_raise(token_id, ApiToken.user_id == actor.id, for_update=True)
    if token.revoked_at is None:
        await tokens.update(token, {"revoked_at": utcnow()})
    return token
