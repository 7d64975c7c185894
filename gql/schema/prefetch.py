"""Loading a list's related objects before its fields are resolved.

A list of 50 posts with ``createdBy updatedBy tags`` has 150 fields that each await a
dataloader: correct (three batches, three statements), but each awaiting field costs the
executor a coroutine and a task. A top-level list instead looks at what its nodes
select and loads those relations at once, in the same batches; the field resolvers then
find them loaded (``now_or_later``) and answer synchronously.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from gql.schema.context import Info
from persistence.models import Post, User


async def prefetch(info: Info, rows: Sequence[Any]) -> None:
    """Loads what the selection of ``info``'s field (a connection) asks of ``rows``."""
    if not rows:
        return
    fields = _node_fields(info.selected_fields)
    loaders = info.context.loaders
    loads: list[Awaitable[Any]] = []
    user_ids = {
        user_id
        for field, column in (("createdBy", "created_by_id"), ("updatedBy", "updated_by_id"))
        if field in fields
        for user_id in (getattr(row, column, None) for row in rows)
        if user_id is not None
    }
    if user_ids:
        loads.append(loaders.by_id(User).load_many(user_ids))
    if "tags" in fields and isinstance(rows[0], Post):
        loads.append(loaders.tags_by_post_id.load_many([row.id for row in rows]))
    await asyncio.gather(*loads)


def _node_fields(selections: Iterable[Selection]) -> set[str]:
    """The names of the fields selected on a connection's nodes (``edges { node }``),
    fragments included."""
    return {
        field.name
        for connection in _fields(selections)
        for edges in _fields(connection.selections)
        if edges.name == "edges"
        for node in _fields(edges.selections)
        if node.name == "node"
        for field in _fields(node.selections)
    }


def _fields(selections: Iterable[Selection]) -> list[SelectedField]:
    """The fields among ``selections``, with those inside fragments."""
    found: list[SelectedField] = []
    for selection in selections:
        if isinstance(selection, SelectedField):
            found.append(selection)
        elif isinstance(selection, FragmentSpread | InlineFragment):
            found.extend(_fields(selection.selections))
    return found
