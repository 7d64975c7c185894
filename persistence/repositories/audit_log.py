from __future__ import annotations

from persistence.models.audit_log import AuditLog
from persistence.pagination import desc
from persistence.repository import BaseRepository


class AuditLogRepository(BaseRepository[AuditLog]):
    """Reads of the audit trail. Entries are written by the unit of work only."""

    model = AuditLog
    default_order = (desc(AuditLog.created_at),)
