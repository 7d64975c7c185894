"""``node(id:)`` and ``nodes(ids:)``: any object by its global id.

Each resolver module lists the types it can look up in a ``NODES`` dict (type name ->
an async lookup by global id); the schema gathers them. A lookup returns None for an
object that does not exist or that the viewer may not see.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import strawberry

from gql.engine.cost import MAX_ITEMS
from gql.errors import BadUserInputError
from gql.schema.context import Info
from gql.schema.ids import parse_global_id
from gql.schema.types.node import Node

NodeLookup = Callable[[Info, strawberry.ID], Awaitable[Any]]

MAX_NODES = 100


def node_query(lookups: Mapping[str, NodeLookup]) -> type:
    """The Query fields ``node`` and ``nodes`` over these lookups."""

    async def find(info: Info, id: strawberry.ID) -> Any:
        type_name, _ = parse_global_id(id)
        lookup = lookups.get(type_name)
        return await lookup(info, id) if lookup is not None else None

    @strawberry.type
    class NodeQuery:
        @strawberry.field(description="Any object by its global id; null if it does not "
                          "exist or you may not see it.")  # fmt: skip
        async def node(self, info: Info, id: strawberry.ID) -> Node | None:
            return await find(info, id)

        @strawberry.field(
            description=f"Objects by global id, in order (at most {MAX_NODES}).",
            metadata={MAX_ITEMS: "ids"},
        )
        async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
            if len(ids) > MAX_NODES:
                raise BadUserInputError(f"Ask for at most {MAX_NODES} ids at once.")
            # Gathered, so that the lookups of one type batch into one statement.
            # return_exceptions: a bad id must not leave its siblings' lookups (and
            # their database sessions) running after the response.
            found = await asyncio.gather(*(find(info, id) for id in ids), return_exceptions=True)
            for result in found:
                if isinstance(result, BaseException):
                    raise result
            return list(found)

    return NodeQuery
