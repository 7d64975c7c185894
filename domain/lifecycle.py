"""Deleting softly and restoring, the same for every soft-deletable aggregate: its own
module says who may change a row (``editable``) and whose deleted rows one may list and
restore (``restorable_by``)."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import ColumnElement

from persistence.models import User
from persistence.repository import repository_for
from persistence.unit_of_work import UnitOfWork


class SoftDeletable(Protocol):
    """What a soft-deletable aggregate's module provides."""

    async def editable(
        self, uow: UnitOfWork, actor: User, key: Any, *, include_deleted: bool = False
    ) -> Any: ...

    def restorable_by(self, viewer: User | None) -> ColumnElement[bool]: ...


async def delete(
    uow: UnitOfWork, actor: User, rules: SoftDeletable, key: Any, *,
    expected_version: int | None = None,
) -> Any:  # fmt: skip
    """Deleted softly: hidden from every read until restored."""
    row = await rules.editable(uow, actor, key)
    return await repository_for(type(row))(uow.session).soft_delete(
        row, expected_version=expected_version
    )


async def restore(
    uow: UnitOfWork, actor: User, rules: SoftDeletable, key: Any, *,
    expected_version: int | None = None,
) -> Any:  # fmt: skip
    row = await rules.editable(uow, actor, key, include_deleted=True)
    return await repository_for(type(row))(uow.session).restore(
        row, expected_version=expected_version
    )
