"""Top-level list fields: one keyset page, and a COUNT only if `totalCount` is asked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement

from gql.schema.context import Info
from gql.schema.prefetch import prefetch
from gql.schema.types.connection import Connection, page_request
from persistence.pagination import SortKey
from persistence.repository import BaseRepository


async def list_connection(
    info: Info,
    repository: type[BaseRepository[Any]],
    where: Sequence[ColumnElement[bool]],
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    order_by: Sequence[SortKey] = (),
    include_deleted: bool = False,
    kind: type[Connection[Any]] = Connection,
) -> Connection[Any]:
    request = page_request(first, after, last, before)
    database = info.context.database
    async with database.reader() as session:
        page = await repository(session).page(
            request, *where, order_by=order_by, include_deleted=include_deleted
        )
    await prefetch(info, page.items)

    async def count() -> int:
        async with database.reader() as session:
            return await repository(session).count(*where, include_deleted=include_deleted)

    return kind.of(page, count)
