from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, Enum, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from persistence.mixins import AuditedEntityBase, SoftDeleteMixin

if TYPE_CHECKING:
    from persistence.models.comment import Comment
    from persistence.models.tag import Tag


class PostStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"


_LIVE = text("deleted_at IS NULL")


class Post(AuditedEntityBase, SoftDeleteMixin):
    """A post; its author is ``created_by_id``."""

    __tablename__ = "posts"
    __created_by_indexed__ = False  # ix_posts_created_by_id_created_at leads with it

    title: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    # A CHECK constraint rather than a database enum: adding a status is then a
    # constraint swap, not an ALTER TYPE that cannot run inside a transaction.
    status: Mapped[PostStatus] = mapped_column(
        Enum(
            PostStatus,
            native_enum=False,
            create_constraint=False,
            length=20,
            values_callable=lambda members: [m.value for m in members],
        ),
        default=PostStatus.DRAFT,
    )
    published_at: Mapped[datetime | None]

    # For reading, loaded explicitly (selectinload); see persistence.mixins.user_at.
    comments: Mapped[list[Comment]] = relationship(
        primaryjoin="and_(Post.id == foreign(Comment.post_id), Comment.deleted_at.is_(None))",
        order_by="(Comment.created_at, Comment.id)",
        lazy="raise",
        viewonly=True,
    )
    tags: Mapped[list[Tag]] = relationship(
        secondary="post_tags", order_by="Tag.name", lazy="raise", viewonly=True
    )

    __table_args__ = (
        CheckConstraint("length(title) BETWEEN 1 AND 200", name="title_length"),
        CheckConstraint("length(slug) BETWEEN 1 AND 200", name="slug_length"),
        CheckConstraint("status IN ('draft', 'published', 'archived')", name="status"),
        CheckConstraint("status = 'draft' OR published_at IS NOT NULL", name="published_at_set"),
        # Slugs are unique among live posts only: deleting a post frees its slug.
        SoftDeleteMixin.unique_while_live("posts", "slug"),
        Index(
            "ix_posts_created_at_id_live",
            "created_at",
            "id",
            postgresql_where=_LIVE,
            sqlite_where=_LIVE,
        ),
        Index("ix_posts_status_published_at", "status", "published_at"),
        Index("ix_posts_created_by_id_created_at", "created_by_id", "created_at"),
    )
