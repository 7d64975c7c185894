from __future__ import annotations

from collections.abc import Hashable, Sequence
from uuid import UUID

from sqlalchemy import select

from persistence.models.post_tag import PostTag
from persistence.models.tag import Tag
from persistence.pagination import asc
from persistence.repository import BaseRepository
from persistence.snapshots import keyed_entities


class TagRepository(BaseRepository[Tag]):
    model = Tag
    default_order = (asc(Tag.name),)
    sortable = frozenset({"name", "created_at"})

    async def tags_by_post(self, post_ids: Sequence[Hashable]) -> dict[Hashable, list[Tag]]:
        """Each post's tags, by name, in one statement."""
        stmt = self.prepared(
            "tags_by_post",
            lambda: (
                select(PostTag.post_id, Tag)
                .join(Tag, Tag.id == PostTag.tag_id)
                .where(self.one_of(PostTag.post_id, parameter="post_ids"))
                .order_by(Tag.name, Tag.id)
            ),
        )
        grouped: dict[Hashable, list[Tag]] = {post_id: [] for post_id in post_ids}
        params = {"post_ids": list(set(post_ids))}
        for post_id, tag in await keyed_entities(self.session, Tag, stmt, params):
            grouped[post_id].append(tag)
        return grouped

    async def set_post_tags(self, post_id: UUID, tag_ids: Sequence[UUID]) -> bool:
        """Make the post's tags exactly ``tag_ids``: one audit entry per link added or
        removed, none for links that stay. True if any link changed."""
        current = set(
            await self.session.scalars(select(PostTag.tag_id).where(PostTag.post_id == post_id))
        )
        wanted = set(tag_ids)
        for link in await self.session.scalars(
            select(PostTag).where(PostTag.post_id == post_id, PostTag.tag_id.in_(current - wanted))
        ):
            await self.session.delete(link)
        self.session.add_all(PostTag(post_id=post_id, tag_id=t) for t in wanted - current)
        await self.session.flush()
        return wanted != current

    async def delete_with_links(self, tag: Tag, *, expected_version: int | None = None) -> None:
        """Delete the tag and its links to posts, each link removal audited on its post
        (the database would cascade them silently)."""
        self.check_version(tag, expected_version)
        for link in await self.session.scalars(select(PostTag).where(PostTag.tag_id == tag.id)):
            await self.session.delete(link)
        await self.session.flush()  # links first: the tag's DELETE would cascade them
        await self.delete(tag)
