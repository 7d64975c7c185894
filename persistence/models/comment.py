from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from sqlalchemy import CheckConstraint, ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from persistence.mixins import AuditedEntityBase, SoftDeleteMixin

if TYPE_CHECKING:
    from persistence.models.post import Post


class Comment(AuditedEntityBase, SoftDeleteMixin):
    __tablename__ = "comments"
    __created_by_indexed__ = False  # ix_comments_created_by_id_created_at leads with it

    post_id: Mapped[UUID] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)
    post: Mapped[Post] = relationship(lazy="raise", viewonly=True)

    __table_args__ = (
        CheckConstraint("length(body) BETWEEN 1 AND 10000", name="body_length"),
        # Serves both the FK and the per-post page of comments in creation order.
        Index("ix_comments_post_id_created_at_id", "post_id", "created_at", "id"),
        Index("ix_comments_created_by_id_created_at", "created_by_id", "created_at"),
    )
