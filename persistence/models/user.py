from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from persistence.mixins import TimestampedBase, UserAuditMixin, VersionMixin

if TYPE_CHECKING:
    from persistence.models.user_key import UserKey


class User(TimestampedBase, UserAuditMixin, VersionMixin):
    """A person who signs in. The documented exception to UUID keys: many foreign keys
    point at users, and sequential integer ids are stable and cheap."""

    __tablename__ = "users"
    __audit_redacted__ = frozenset({"password_hash"})
    __audit_personal__ = frozenset({"email", "username", "full_name"})
    __audit_subject__ = "id"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    username: Mapped[str] = mapped_column(String(50))
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    is_superuser: Mapped[bool] = mapped_column(default=False)
    data_key: Mapped[UserKey | None] = relationship(lazy="raise", viewonly=True)
    """The key the user's personal audit values are sealed with; loaded with the user
    where a unit of work will need it (the token lookup)."""

    __table_args__ = (
        # Emails are stored lower-case, so the plain unique constraint is case-insensitive.
        CheckConstraint("email = lower(email)", name="email_lower_case"),
        CheckConstraint("length(username) BETWEEN 1 AND 50", name="username_length"),
        Index("ix_users_is_active_created_at", "is_active", "created_at"),
    )

    @validates("email")
    def _lower_email(self, _key: str, value: str) -> str:
        return value.strip().lower()


# Usernames are unique case-insensitively; the expression needs the real column.
Index("uq_users_username_lower", func.lower(User.username), unique=True)
