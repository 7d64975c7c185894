from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from persistence.base import Base
from persistence.mixins import TimestampMixin


class UserKey(Base, TimestampMixin):
    """A user's data key (DEK), wrapped under a key from settings (a KEK): the personal
    values of audit entries about or by the user are sealed with it
    (:mod:`persistence.personal`).

    Erasing the user destroys the key and keeps the row as a tombstone (``erased_at``,
    no key), so values written afterwards are recorded as erased instead of under a new
    key. Part of the audit machinery, like ``audit_log``: written by
    :mod:`persistence.personal` only, and not audited itself (the entries say what
    happened to the user; an entry about a key would say nothing more).
    """

    __tablename__ = "user_keys"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, sort_order=-100
    )
    kek_id: Mapped[str | None] = mapped_column(String(32))
    """Which key from settings wrapped ``wrapped_dek``."""
    wrapped_dek: Mapped[bytes | None] = mapped_column(LargeBinary)
    erased_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(
            "(erased_at IS NULL AND kek_id IS NOT NULL AND wrapped_dek IS NOT NULL)"
            " OR (erased_at IS NOT NULL AND kek_id IS NULL AND wrapped_dek IS NULL)",
            name="key_or_erased",
        ),
    )
