from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement

from persistence.models.audit_log import AuditLog
from persistence.pagination import desc
from persistence.repository import BaseRepository


class AuditLogRepository(BaseRepository[AuditLog]):
    """Reads of the audit trail. Entries are written by the unit of work only."""

    model = AuditLog
    default_order = (desc(AuditLog.created_at),)

    @staticmethod
    def criteria(
        *,
        actor_id: int | None = None,
        entity_type: str | None = None,
        entity_id: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if actor_id is not None:
            where.append(AuditLog.actor_id == actor_id)
        if entity_type is not None:
            where.append(AuditLog.entity_type == entity_type)
        if entity_id is not None:
            where.append(AuditLog.entity_id == entity_id)
        if action is not None:
            where.append(AuditLog.action == action)
        if since is not None:
            where.append(AuditLog.created_at >= since)
        if until is not None:
            where.append(AuditLog.created_at < until)
        return where
