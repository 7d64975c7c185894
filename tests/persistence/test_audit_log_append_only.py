"""The database itself refuses to change or remove audit entries."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError

from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.models import AuditLog
from persistence.unit_of_work import UnitOfWork
from tests.factories.tag import create_tag
from tests.support.audit import audit_entries


@pytest.mark.parametrize(
    "statement",
    [update(AuditLog).values(action="forged"), delete(AuditLog)],
    ids=["update", "delete"],
)
async def test_the_database_refuses_to_change_audit_entries(
    database: Database, statement: object
) -> None:
    async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
        tag = await create_tag(uow)
    with pytest.raises(DBAPIError, match="append-only"):
        async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
            await uow.session.execute(statement)  # type: ignore[call-overload]
    [entry] = await audit_entries(database, tag.id)
    assert entry.action == "create"


async def test_audit_entries_cannot_be_added_through_the_orm(database: Database) -> None:
    with pytest.raises(RuntimeError, match="written by the unit of work only"):
        async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
            uow.session.add(AuditLog(action="forged", entity_type="x", entity_id="1", changes={}))
            await uow.session.flush()
