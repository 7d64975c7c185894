from __future__ import annotations

from persistence.models.post import Post
from persistence.pagination import desc
from persistence.repository import BaseRepository


class PostRepository(BaseRepository[Post]):
    model = Post
    default_order = (desc(Post.created_at),)

    async def find_by_slug(self, slug: str) -> Post | None:
        return await self.get_one_by(slug=slug)
