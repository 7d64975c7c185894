from __future__ import annotations

from collections.abc import Sequence

from persistence.engine import Database
from persistence.models import AuditLog
from persistence.pagination import asc
from persistence.repositories.audit_log import AuditLogRepository


async def audit_entries(database: Database, entity_id: object = None) -> Sequence[AuditLog]:
    """Audit entries in the order they were written, for one entity or all."""
    where = [] if entity_id is None else [AuditLog.entity_id == str(entity_id)]
    async with database.reader() as session:
        return await AuditLogRepository(session).list(*where, order_by=[asc(AuditLog.created_at)])
