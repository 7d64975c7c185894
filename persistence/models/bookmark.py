from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from sqlalchemy import CheckConstraint, ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from persistence.mixins import AuditedEntityBase, SoftDeleteMixin

if TYPE_CHECKING:
    from persistence.models.post import Post


class Bookmark(AuditedEntityBase, SoftDeleteMixin):
    """A post a user marked, with an optional note; the user is ``created_by_id``."""

    __tablename__ = "bookmarks"
    __created_by_indexed__ = False  # the unique index leads with it
    __audit_personal__ = frozenset({"note"})
    __audit_subject__ = "created_by_id"

    post_id: Mapped[UUID] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    post: Mapped[Post] = relationship(lazy="raise", viewonly=True)

    __table_args__ = (
        CheckConstraint("length(note) <= 1000", name="note_length"),
        SoftDeleteMixin.unique_while_live("bookmarks", "created_by_id", "post_id"),
    )
