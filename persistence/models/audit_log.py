from __future__ import annotations

from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from persistence.mixins import AppendOnlyLogBase


class AuditLog(AppendOnlyLogBase):
    """One row per created, changed or deleted row, written in the same transaction.

    Append-only: the database refuses UPDATE and DELETE (see the migration's trigger).
    ``actor_id`` is deliberately not a foreign key: an audit trail must keep the id of
    a user who is later deleted, and ON DELETE SET NULL would be an UPDATE.
    """

    __tablename__ = "audit_log"

    actor_id: Mapped[int | None]
    action: Mapped[str] = mapped_column(String(20))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(36))
    changes: Mapped[dict[str, Any]]
    request_id: Mapped[str | None] = mapped_column(String(64))
    # Sealed under the actor's key (persistence.personal), so longer than an address.
    ip_address: Mapped[str | None] = mapped_column(Text)
    user_agent: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_audit_log_entity_id_created_at_id", "entity_id", "created_at", "id"),
        Index("ix_audit_log_entity_type_entity_id", "entity_type", "entity_id"),
        Index("ix_audit_log_actor_id_created_at", "actor_id", "created_at"),
        Index("ix_audit_log_created_at_id", "created_at", "id"),
    )
