"""``interface Node``: every object has an opaque global id (the Relay convention)."""

from __future__ import annotations

from typing import Any

import strawberry

from gql.engine.lean import LEAN, call_lean
from gql.schema.context import Context, Info
from gql.schema.ids import to_global_id


def global_id(row: Any, _context: Context, type_name: str) -> strawberry.ID:
    return strawberry.ID(to_global_id(type_name, row.id))


@strawberry.interface(description="An object with a global id, fetchable with `node(id:)`.")
class Node:
    @strawberry.field(
        description="An opaque global id, unique across all types.", metadata={LEAN: global_id}
    )
    def id(self, root: strawberry.Parent[Any], info: Info) -> strawberry.ID:
        return call_lean(global_id, root, info)
