"""``node(id:)`` and ``nodes(ids:)``: any object by its global id.

Every declared entity (:mod:`gql.schema.entities`) is found by its loader by id, through
its visibility rule: None for an object that does not exist or that the viewer may not
see.
"""

from __future__ import annotations

import asyncio
from typing import Any

import strawberry

from gql.engine.cost import MAX_ITEMS
from gql.errors import BadUserInputError
from gql.schema.context import Info
from gql.schema.entities import entity_named, key_type
from gql.schema.ids import int_key, parse_global_id, uuid_key
from gql.schema.types.node import Node

MAX_NODES = 100


async def find(info: Info, id: strawberry.ID) -> Any:
    """The object with this global id, if the viewer may see it."""
    type_name, _ = parse_global_id(id)
    found = entity_named(type_name)
    if found is None:
        return None
    key = int_key(id, type_name) if key_type(found.model) is int else uuid_key(id, type_name)
    return await info.context.loaders.by_id(found.model).load(key)


def node_query() -> type:
    """The Query fields ``node`` and ``nodes``."""

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
