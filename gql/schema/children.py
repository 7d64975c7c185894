"""A parent's children as a connection, from the foreign key that points at the parent:

    @strawberry.type
    class UserType:
        posts = children_field(PostType, Post.created_by_id, description="...")

The page and its count come from the request's loaders (:mod:`gql.schema.loaders`):
a list of parents costs one statement for all their pages, and one more for the counts
only if ``totalCount`` is asked. The children go through their entity's visibility rule,
in their repository's order.
"""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy.orm import InstrumentedAttribute
from strawberry.types.field import StrawberryField

from gql.schema.context import Info
from gql.schema.loaders import PageKey
from gql.schema.types.connection import DEFAULT_PAGE_SIZE, Connection, page_request


def children_field(
    graphql_type: Any, parent: InstrumentedAttribute[Any], *, description: str
) -> StrawberryField:
    """``field(first, after): Connection``, of the rows whose ``parent`` column holds
    the parent's id. ``graphql_type`` may be a lazy reference
    (``Annotated["PostType", strawberry.lazy(...)]``)."""

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
