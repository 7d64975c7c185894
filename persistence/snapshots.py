"""Rows read to answer a query, without the ORM's loading machinery.

A read session never changes what it loads, yet the ORM loads every row through its
identity map, with an ``InstanceState`` (a weak reference, its dicts), per-attribute
populators and load events: for a page of posts with their authors and tags that cost
more CPU than the statements themselves, and for a list of 10,000 rows most of the
answer.

So a read session's entities are *snapshots*: instances of the model made by
``__new__``, with their column values in ``__dict__``, where the ORM keeps the values it
loaded (reading a column reads the dict, as on a loaded entity). Equal rows in one
result are one object, as in an identity map. A snapshot gets its state only if
something asks for it (:meth:`persistence.base.Base.__getattr__`): it is then the
detached entity the ORM would have loaded, for ``inspect()`` or ``Session.merge`` alike.
Units of work load their entities through the ORM as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import Executable, Row, inspect
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.audit import ReadOnlySession
from persistence.base import Base

T = TypeVar("T", bound=Base)
Build = Callable[[Row[Any], dict[Any, Any]], Any]


def answering(session: AsyncSession) -> bool:
    """Whether ``session`` only reads (its entities may be snapshots)."""
    return isinstance(session.sync_session, ReadOnlySession)


async def entities(
    session: AsyncSession,
    model: type[T],
    stmt: Executable,
    params: Mapping[str, Any] | None = None,
) -> list[T]:
    """``session.scalars(stmt, params).all()`` for a ``SELECT model`` (or an alias of
    it): snapshots on a read session, the ORM's entities on any other."""
    if not answering(session):
        return list((await session.scalars(stmt, params)).all())
    return [found for _row, found in await _snapshots(session, model, stmt, params, 0)]


async def keyed_entities(
    session: AsyncSession,
    model: type[T],
    stmt: Executable,
    params: Mapping[str, Any] | None = None,
) -> list[tuple[Any, T]]:
    """``session.execute(stmt, params).all()`` for a ``SELECT key, model``: pairs of a
    key and an entity, snapshots on a read session."""
    if not answering(session):
        return [(key, found) for key, found in await session.execute(stmt, params)]
    return [(row[0], found) for row, found in await _snapshots(session, model, stmt, params, 1)]


async def _snapshots(
    session: AsyncSession,
    model: type[T],
    stmt: Executable,
    params: Mapping[str, Any] | None,
    start: int,
) -> list[tuple[Row[Any], T]]:
    """Each row of ``stmt`` with the snapshot of ``model`` its columns from ``start`` hold."""
    result = await (await session.connection()).execute(stmt, params)
    build = _builder(model, tuple(result.keys()), start)
    seen: dict[Any, Any] = {}
    return [(row, build(row, seen)) for row in result]


@cache
def _builder(model: type[Base], keys: tuple[str, ...], start: int) -> Build:
    """Snapshots of ``model`` from rows whose columns from ``start`` on are ``keys``
    (its columns, as ``SELECT model`` names them)."""
    columns = keys[start:]
    mapper = inspect(model)
    unknown = set(columns) - {attribute.key for attribute in mapper.column_attrs}
    if unknown:
        raise TypeError(f"not columns of {model.__name__}: {sorted(unknown)}")
    positions = [start + columns.index(column.key) for column in mapper.primary_key]
    pick = itemgetter(*positions)
    new = model.__new__

    def build(row: Row[Any], seen: dict[Any, Any]) -> Any:
        key = pick(row)
        found = seen.get(key)
        if found is None:
            found = seen[key] = new(model)
            # The builder is made for these keys: no length check per row.
            found.__dict__.update(zip(columns, row[start:] if start else row, strict=False))
        return found

    return build
