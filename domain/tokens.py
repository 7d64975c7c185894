"""API tokens: issuing one (signing in, or on demand), and revoking it."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from domain.rules import bounded_text
from persistence.base import utcnow
from persistence.errors import ValidationError
from persistence.models import ApiToken, User
from persistence.repositories.api_token import ApiTokenRepository
from persistence.security import new_token
from persistence.unit_of_work import UnitOfWork

MAX_TOKEN_DAYS = 365


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
