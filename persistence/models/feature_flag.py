from __future__ import annotations

from uuid import UUID

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from persistence.mixins import AuditedEntityBase

# ^[a-z][a-z0-9_.-]{1,63}$ without regular expressions (SQLite has none).
_KEY_FORMAT = (
    "length(key) BETWEEN 2 AND 64"
    " AND ltrim(substr(key, 1, 1), 'abcdefghijklmnopqrstuvwxyz') = ''"
    " AND ltrim(key, 'abcdefghijklmnopqrstuvwxyz0123456789_.-') = ''"
)


class FeatureFlag(AuditedEntityBase):
    __tablename__ = "feature_flags"

    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(default=False)
    rollout_percentage: Mapped[int] = mapped_column(default=100)
    overrides: Mapped[list[FlagOverride]] = relationship(
        back_populates="flag", order_by="FlagOverride.user_id", lazy="raise", viewonly=True
    )

    __table_args__ = (
        CheckConstraint(_KEY_FORMAT, name="key_format"),
        CheckConstraint("rollout_percentage BETWEEN 0 AND 100", name="rollout_percentage"),
    )


class FlagOverride(AuditedEntityBase):
    """A per-user answer for one flag; it wins over the flag's rollout."""

    __tablename__ = "flag_overrides"

    flag_id: Mapped[UUID] = mapped_column(ForeignKey("feature_flags.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    enabled: Mapped[bool]
    flag: Mapped[FeatureFlag] = relationship(
        back_populates="overrides", lazy="raise", viewonly=True
    )

    __table_args__ = (UniqueConstraint("flag_id", "user_id"),)
