"""Who is asking: the ``Authorization: Bearer <token>`` header, resolved to a user
(:func:`domain.tokens.user_of`). When the database cannot answer, the request is refused
with 503 before GraphQL runs: the token is neither accepted nor rejected.
"""

from __future__ import annotations

from domain import tokens
from domain.token_cache import TokenCache
from gql.errors import database_fault, log_database_fault
from gql.http.request_id import current_request_id
from persistence.engine import Database
from persistence.models import User
from persistence.repositories.api_token import ValidToken


class InvalidTokenError(Exception):
    """The request carried credentials that do not identify an active user."""


async def authenticate(
    database: Database, authorization: str | None, cache: TokenCache | None = None
) -> User | None:
    """The user the header identifies; None without a header. Raises InvalidTokenError,
    or a ClientError with status 503 (SERVICE_UNAVAILABLE or TIMEOUT) when the database
    could not say. With a ``cache``, a token read within its time is not read again."""
    found = await authenticate_token(database, authorization, cache)
    return None if found is None else found.user


async def authenticate_token(
    database: Database, authorization: str | None, cache: TokenCache | None = None
) -> ValidToken | None:
    """:func:`authenticate`, with the token's id."""
    if authorization is None:
        return None
    scheme, _, secret = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise InvalidTokenError
    try:
        found = await tokens.token_of(database, secret.strip(), cache)
    except Exception as exc:
        refusal = database_fault(exc)
        if refusal is None:
            raise
        log_database_fault(exc, "authentication", current_request_id.get())
        raise refusal from exc
    if found is None:
        raise InvalidTokenError
    return found
