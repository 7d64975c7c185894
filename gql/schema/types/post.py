from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from domain import posts
from domain.posts import MAX_TAGS
from gql.engine.cost import MAX_ITEMS
from gql.engine.lean import LEAN, call_lean
from gql.schema.context import Context, Info
from gql.schema.entities import entity
from gql.schema.relations import children_field
from gql.schema.types.audited import Audited
from gql.schema.types.tag import TagType
from persistence.models import Comment, Post, PostStatus

if TYPE_CHECKING:
    from gql.schema.types.comment import CommentType

PostStatusEnum = strawberry.enum(
    PostStatus,
    name="PostStatus",
    description="DRAFT: visible to its author and superusers; PUBLISHED: visible to all; "
    "ARCHIVED: visible to its author and superusers.",
)


def post_tags(post: Post, context: Context, _type_name: str) -> Any:
    """The post's tags, or their awaitable load (see gql.schema.prefetch)."""
    return context.loaders.tags_by_post_id.now_or_later(post.id)


@entity(
    Post,
    description="A post. Its author is `createdBy`.",
    visible_to=posts.visible_to,
    rules=posts,
)
class PostType(Audited):
    title: str
    slug: str = strawberry.field(description="Unique among live posts; usable in `post(slug:)`.")
    body: str
    status: PostStatusEnum  # type: ignore[valid-type]
    published_at: datetime | None = strawberry.field(description="When it was first published.")

    @strawberry.field(
        description="Its tags, by name.",
        metadata={LEAN: post_tags, MAX_ITEMS: MAX_TAGS},
    )
    def tags(self, root: strawberry.Parent[Post], info: Info) -> list[TagType]:
        tags: Any = call_lean(post_tags, root, info)
        return tags

    comments = children_field(
        Annotated["CommentType", strawberry.lazy("gql.schema.types.comment")],
        Comment.post_id,
        description="Its comments, oldest first.",
    )
