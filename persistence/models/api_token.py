from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from persistence.mixins import UUIDv7TimestampedBase


class ApiToken(UUIDv7TimestampedBase):
    """A bearer token. Only the SHA-256 of the secret is stored; ``prefix`` is the
    short, non-secret start of the token that lets a person recognise it in a list."""

    __tablename__ = "api_tokens"
    __audit_redacted__ = frozenset({"token_hash"})
    __audit_ignored__ = frozenset({"last_used_at"})

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
