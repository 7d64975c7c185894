from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from domain import comments
from gql.schema.entities import entity
from gql.schema.relations import parent_field
from gql.schema.types.audited import Audited
from persistence.models import Comment

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

    post = parent_field(
        Annotated["PostType", strawberry.lazy("gql.schema.types.post")],
        Comment.post_id,
        description="The post it comments on.",
    )
