from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import ColumnElement, exists

from persistence.models.post import Post, PostStatus
from persistence.models.post_tag import PostTag
from persistence.pagination import desc
from persistence.repositories.text import contains
from persistence.repository import BaseRepository


class PostRepository(BaseRepository[Post]):
    model = Post
    default_order = (desc(Post.created_at),)
    sortable = frozenset({"created_at", "updated_at", "title"})

    @staticmethod
    def criteria(
        *,
        statuses: Sequence[PostStatus] = (),
        author_id: int | None = None,
        tag_id: UUID | None = None,
        search: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> list[ColumnElement[bool]]:
        """The WHERE clauses of a post filter; ``search`` matches title and body
        literally (``%`` and ``_`` are not wildcards)."""
        where: list[ColumnElement[bool]] = []
        if statuses:
            where.append(Post.status.in_(statuses))
        if author_id is not None:
            where.append(Post.created_by_id == author_id)
        if tag_id is not None:
            where.append(exists().where(PostTag.post_id == Post.id, PostTag.tag_id == tag_id))
        if search:
            where.append(contains([Post.title, Post.body], search))
        if created_after is not None:
            where.append(Post.created_at > created_after)
        if created_before is not None:
            where.append(Post.created_at < created_before)
        return where

    async def find_by_slug(self, slug: str, *where: ColumnElement[bool]) -> Post | None:
        return await self.get_one_by(*where, slug=slug)
