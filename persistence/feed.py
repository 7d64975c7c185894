"""The committed audit trail in commit order, after a position: what live updates deliver.

Positions only ever appear above the chain's head (:mod:`persistence.chain`), so a
reader that has handed on everything through position P and then reads what follows P
never misses an entry and never sees one twice; and an entry gets a position only once
its transaction has committed, so nothing rolled back is ever read. Audit ids are made
before commit and do not follow commit order: positions do.

An :class:`Event` names what changed (ids, the action, who); what the row holds is read
through the normal paths, by whoever it is delivered to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast
from uuid import UUID

from sqlalchemy import ColumnElement, Select, Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.models.audit_chain import AuditChainLink
from persistence.models.audit_log import AuditLog

BATCH: Final = 500
"""Events read per statement."""

CHANNEL: Final = "auditql_audit"
"""The PostgreSQL NOTIFY channel the sequencer announces new positions on: the payload
is the new head's position."""

_LOG = cast(Table, AuditLog.__table__)
_CHAIN = cast(Table, AuditChainLink.__table__)


@dataclass(frozen=True, slots=True)
class Event:
    """One committed audit entry, at its position."""

    position: int
    committed_at: datetime
    entry_id: UUID
    entity_type: str
    entity_id: str
    action: str
    actor_id: int | None
    changes: Mapping[str, Any]

    def recorded(self, key: str) -> Any:
        """The value the entry records ``key`` as having now (None if it records none):
        a new comment's ``post_id``, say. Personal values are sealed."""
        change = self.changes.get(key)
        return change[1] if isinstance(change, list) and len(change) == 2 else None


def events_after(
    position: int, where: Iterable[ColumnElement[bool]] = (), *, through: int | None = None
) -> Select[Any]:
    """The statement reading the events after ``position`` (and at or before
    ``through``; ``where``: conditions on ``audit_log``), in position order, a batch at a
    time."""
    if through is not None:
        where = (*where, _CHAIN.c.position <= through)
    return (
        select(
            _CHAIN.c.position,
            _CHAIN.c.committed_at,
            _LOG.c.id,
            _LOG.c.entity_type,
            _LOG.c.entity_id,
            _LOG.c.action,
            _LOG.c.actor_id,
            _LOG.c.changes,
        )
        .join(
            _LOG,
            # Both halves of the key: PostgreSQL reads only the entry's own partition.
            (_LOG.c.id == _CHAIN.c.entry_id) & (_LOG.c.created_at == _CHAIN.c.entry_created_at),
        )
        .where(_CHAIN.c.position > position, *where)
        .order_by(_CHAIN.c.position)
        .limit(BATCH)
    )


async def read_after(
    connection: AsyncConnection,
    position: int,
    where: Sequence[ColumnElement[bool]] = (),
    *,
    through: int | None = None,
) -> list[Event]:
    """The next batch of events after ``position`` (at most :data:`BATCH`)."""
    rows = await connection.execute(events_after(position, where, through=through))
    return [Event(*row) for row in rows]


async def head_position(connection: AsyncConnection) -> int:
    """The position of the chain's head; 0 before the first entry is chained."""
    head = await connection.scalar(select(func.max(_CHAIN.c.position)))
    return int(head or 0)
