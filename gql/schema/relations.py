"""Fields that follow a foreign key, either way, through the request's loaders
(:mod:`gql.schema.loaders`) and the visibility rule of the rows they reach:

    @strawberry.type
    class CommentType:
        post = parent_field(PostType, Comment.post_id, description="...")

    @strawberry.type
    class UserType:
        posts = children_field(PostType, Post.created_by_id, description="...")

A list of comments costs one statement for all their posts; a list of users, one for
all their pages of posts and one more for the counts only if ``totalCount`` is asked.
Either type may be a lazy reference (``Annotated["PostType", strawberry.lazy(...)]``).
"""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy.orm import InstrumentedAttribute
from strawberry.types.field import StrawberryField

from gql.schema.context import Info
from gql.schema.entities import entity_at
from gql.schema.loaders import PageKey
from gql.schema.types.connection import DEFAULT_PAGE_SIZE, Connection, page_request


def parent_field(
    graphql_type: Any, column: InstrumentedAttribute[Any], *, description: str
) -> StrawberryField:
    """The row ``column`` points at, or null where there is none the viewer may see."""
    [foreign_key] = column.property.columns[0].foreign_keys

    async def resolve(self: Any, info: Info) -> Any:
        model = entity_at(foreign_key.column.table).model
        return await info.context.loaders.by_id(model).load(getattr(self, column.key))

    resolve.__annotations__ = {"info": Info, "return": graphql_type | None}
    field: StrawberryField = strawberry.field(resolver=resolve, description=description)
    return field


def children_field(
    graphql_type: Any, parent: InstrumentedAttribute[Any], *, description: str
) -> StrawberryField:
    """``field(first, after): Connection``, of the rows whose ``parent`` column holds
    the parent's id, in their repository's order."""

    async def resolve(
        self: Any, info: Info, first: int = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Any:
        page_request(first, after, None, None)  # validates the page size
        loaders = info.context.loaders
        page = await loaders.pages(parent).load(PageKey(self.id, first, after))
        return Connection.of(page, lambda: loaders.counts(parent).load(self.id))

    resolve.__annotations__ = {
        "info": Info, "first": int, "after": str | None, "return": Connection[graphql_type],
    }  # fmt: skip
    field: StrawberryField = strawberry.field(resolver=resolve, description=description)
    return field
