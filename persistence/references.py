"""Naming the foreign key behind a failed write on SQLite.

PostgreSQL reports the violated constraint; SQLite only says "FOREIGN KEY constraint
failed". So on SQLite, a unit of work remembers the references each flush writes, and
after a failure looks up which of them points nowhere. Writers on SQLite hold the write
lock from their first statement (BEGIN IMMEDIATE), so the answer cannot race.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, event, exists, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction

from persistence.history import added_values

_KEY = "auditql.references"


class Reference(NamedTuple):
    field: str
    target: ColumnElement[Any]
    value: Any


def record_references(session: Session) -> None:
    """Remember, at every flush of ``session``, the references the flush writes."""
    session.info[_KEY] = []

    @event.listens_for(session, "before_flush")
    def _remember(session: Session, _flush: UOWTransaction, _instances: object) -> None:
        session.info[_KEY] = [
            reference
            for obj in (*session.new, *session.dirty)
            for reference in references_in(
                inspect(obj).mapper.local_table.columns, added_values(obj)
            )
        ]


def remember_rows(
    session: Session, columns: Iterable[ColumnElement[Any]], rows: Iterable[Mapping[str, Any]]
) -> None:
    """Remember the references of rows inserted outside the ORM flush (bulk inserts)."""
    if _KEY in session.info:
        columns = list(columns)
        session.info[_KEY] = [ref for row in rows for ref in references_in(columns, row)]


def references_in(
    columns: Iterable[ColumnElement[Any]], values: Mapping[str, Any]
) -> list[Reference]:
    return [
        Reference(str(column.key), fk.column, values[str(column.key)])
        for column in columns
        for fk in column.foreign_keys
        if values.get(str(column.key)) is not None
    ]


async def find_missing_reference(session: AsyncSession) -> str | None:
    """The field of the first remembered reference whose target row does not exist."""
    for reference in dict.fromkeys(session.info.get(_KEY, ())):
        found = await session.scalar(select(exists().where(reference.target == reference.value)))
        if not found:
            return str(reference.field)
    return None
