"""Relay connections over keyset pages: ``edges { cursor node }``, ``pageInfo`` and a
``totalCount`` that costs a COUNT only when it is selected."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, Self, TypeVar

import strawberry
from graphql import GraphQLSchema, get_named_type, is_object_type

from gql.engine.lean import LEAN, call_lean
from persistence.pagination import MAX_PAGE_SIZE, Page, PageRequest

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20

PAGING_ARGUMENTS = {
    "first": f"How many items from the start (or from `after`): 0 to {MAX_PAGE_SIZE}, "
    f"{DEFAULT_PAGE_SIZE} if neither `first` nor `last` is given.",
    "after": "The `cursor` of the item to continue after (`pageInfo.endCursor`).",
    "last": f"How many items from the end (or from `before`): 0 to {MAX_PAGE_SIZE}.",
    "before": "The `cursor` of the item to continue before (`pageInfo.startCursor`).",
}


def describe_paging(schema: GraphQLSchema) -> None:
    """Describes ``first``/``after``/``last``/``before`` wherever a field returns a
    connection, so the page bounds show in every client's documentation without each
    resolver repeating them."""
    for graphql_type in schema.type_map.values():
        if not is_object_type(graphql_type) or graphql_type.name.startswith("__"):
            continue
        for field in graphql_type.fields.values():
            if not get_named_type(field.type).name.endswith("Connection"):
                continue
            for name, argument in field.args.items():
                if name in PAGING_ARGUMENTS and argument.description is None:
                    argument.description = PAGING_ARGUMENTS[name]


@strawberry.type(description="Where a page sits in its list.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


def edge_cursor(edge: Edge[Any], _context: Any, _type_name: str) -> str:
    """Encoded only when selected: most list queries never ask for their cursors."""
    return edge._page.cursor(edge.node)


@strawberry.type(description="One item of a list, with the cursor to continue after it.")
class Edge(Generic[T]):
    node: T
    _page: strawberry.Private[Page[Any]]

    @strawberry.field(metadata={LEAN: edge_cursor})
    def cursor(self, root: strawberry.Parent[Edge[Any]], info: strawberry.Info) -> str:
        return str(call_lean(edge_cursor, root, info))


@strawberry.type(description="One page of a list. Page forwards with `first`/`after` "
                 "and backwards with `last`/`before`; at most 100 items a page.")  # fmt: skip
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    _count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many items the whole list has (costs a count).")
    async def total_count(self) -> int:
        return await self._count()

    @classmethod
    def of(cls, page: Page[Any], count: Callable[[], Awaitable[int]]) -> Self:
        return cls(
            edges=[Edge(node=item, _page=page) for item in page.items],
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=page.start_cursor,
                end_cursor=page.end_cursor,
            ),
            _count=count,
        )


def page_request(
    first: int | None, after: str | None, last: int | None, before: str | None
) -> PageRequest:
    """The pagination arguments; out-of-range sizes are input errors."""
    return PageRequest(first=first, after=after, last=last, before=before)
