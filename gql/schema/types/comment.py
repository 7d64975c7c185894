from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from gql.schema.context import Info
from gql.schema.types.audited import Audited
from gql.schema.types.node import model_type_check
from persistence.models import Comment, Post

if TYPE_CHECKING:
    from gql.schema.types.post import PostType


@strawberry.type(name="Comment", description="A comment on a post. Its author is `createdBy`.")
class CommentType(Audited):
    is_type_of = model_type_check(Comment)

    body: str

    @strawberry.field(description="The post it comments on.")
    async def post(
        self, root: strawberry.Parent[Comment], info: Info
    ) -> Annotated[PostType, strawberry.lazy("gql.schema.types.post")] | None:
        post: Post | None = await info.context.loaders.post_by_id.load(root.post_id)
        return post
