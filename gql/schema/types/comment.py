from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from domain import comments
from gql.schema.context import Info
from gql.schema.entities import entity
from gql.schema.types.audited import Audited
from persistence.models import Comment, Post

if TYPE_CHECKING:
    from gql.schema.types.post import PostType


@entity(
    Comment,
    description="A comment on a post. Its author is `createdBy`.",
    visible_to=comments.visible_to,
    rules=comments,
)
class CommentType(Audited):
    body: str

    @strawberry.field(description="The post it comments on.")
    async def post(
        self, root: strawberry.Parent[Comment], info: Info
    ) -> Annotated[PostType, strawberry.lazy("gql.schema.types.post")] | None:
        post: Post | None = await info.context.loaders.by_id(Post).load(root.post_id)
        return post
