from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import inspect

from persistence.engine import Database
from persistence.models import AuditLog
from persistence.pagination import asc
from persistence.personal import load_deks, open_changes, open_column, sealed_owners
from persistence.repositories.audit_log import AuditLogRepository


async def audit_entries(database: Database, entity_id: object = None) -> Sequence[AuditLog]:
    """Audit entries in the order they were written, for one entity or all."""
    where = [] if entity_id is None else [AuditLog.entity_id == str(entity_id)]
    async with database.reader() as session:
        return await AuditLogRepository(session).list(*where, order_by=[asc(AuditLog.created_at)])


async def opened_entries(database: Database, entity_id: object = None) -> list[AuditLog]:
    """:func:`audit_entries` with their personal values opened (``[erased]`` once their
    user is erased): copies, as the API shows them before it renames fields."""
    entries = await audit_entries(database, entity_id)
    owners = set().union(*(sealed_owners(e.ip_address, e.user_agent, e.changes) for e in entries))
    assert database.keys is not None
    async with database.reader() as session:
        deks = await load_deks(session, database.keys, owners)
    columns = [attr.key for attr in inspect(AuditLog).column_attrs]
    return [
        AuditLog(
            **{
                **{key: getattr(entry, key) for key in columns},
                "ip_address": open_column(entry.ip_address, "ip_address", deks),
                "user_agent": open_column(entry.user_agent, "user_agent", deks),
                "changes": open_changes(entry.entity_type, entry.changes, deks),
            }
        )
        for entry in entries
    ]
