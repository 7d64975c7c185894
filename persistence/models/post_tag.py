from __future__ import annotations

from uuid import UUID

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from persistence.base import Base
from persistence.mixins import AuditOptions, CreatedAtMixin, user_fk


class PostTag(Base, AuditOptions, CreatedAtMixin):
    """The link between a post and a tag. Its audit entries belong to the post."""

    __tablename__ = "post_tags"
    __audit_owner__ = "post_id"

    post_id: Mapped[UUID] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[UUID] = mapped_column(
        ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_by_id: Mapped[int | None] = user_fk()
