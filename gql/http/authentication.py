"""Who is asking: the ``Authorization: Bearer <token>`` header, resolved to a user.

An invalid, expired or revoked token, or one whose user is deactivated, gets one and
the same answer, so a caller learns nothing about which it was. Tokens are looked up
by their SHA-256; the secret itself is never compared, logged or stored. When the
database cannot answer, the request is refused with 503 before GraphQL runs: the token
is neither accepted nor rejected.
"""

from __future__ import annotations

from datetime import timedelta

from gql.errors import database_fault, log_database_fault
from gql.http.request_id import current_request_id
from persistence.audit import AuditContext
from persistence.base import utcnow
from persistence.engine import Database
from persistence.models import User
from persistence.repositories.api_token import ApiTokenRepository
from persistence.security import hash_token
from persistence.unit_of_work import UnitOfWork

# last_used_at is bookkeeping: writing it on every request would turn each read into
# a write, so it is refreshed at most this often per token.
LAST_USED_RESOLUTION = timedelta(minutes=5)


class InvalidTokenError(Exception):
    """The request carried credentials that do not identify an active user."""


async def authenticate(database: Database, authorization: str | None) -> User | None:
    """The user the header identifies; None without a header. Raises InvalidTokenError,
    or a ClientError with status 503 (SERVICE_UNAVAILABLE or TIMEOUT) when the database
    could not say."""
    if authorization is None:
        return None
    scheme, _, secret = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise InvalidTokenError
    try:
        return await _user_of(database, secret.strip())
    except Exception as exc:
        refusal = database_fault(exc)
        if refusal is None:
            raise
        log_database_fault(exc, "authentication", current_request_id.get())
        raise refusal from exc


async def _user_of(database: Database, secret: str) -> User:
    now = utcnow()
    async with database.reader() as session:
        found = await ApiTokenRepository(session).find_valid(hash_token(secret), now)
    if found is None:
        raise InvalidTokenError
    if found.last_used_at is None or now - found.last_used_at > LAST_USED_RESOLUTION:
        async with UnitOfWork(database, AuditContext(actor_id=found.user.id)) as uow:
            tokens = ApiTokenRepository(uow.session)
            await tokens.update(await tokens.get_or_raise(found.token_id), {"last_used_at": now})
    return found.user
