"""Stamping and audit entries, applied to every write a unit of work flushes.

``AuditingSession`` is the session class of every unit of work. Before a flush it
stamps ``created_by_id``/``updated_by_id`` (and ``deleted_by_id`` on soft delete) with
the actor; after the flush, while the attribute history still holds the old values, it
appends one ``audit_log`` row per inserted, updated or deleted row, in the same
transaction. Bulk inserts that bypass the ORM flush go through :func:`bulk_insert`,
which applies the same rules. ``ReadOnlySession`` refuses to flush anything, so no
write can slip past this module through a read session.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, cast
from uuid import UUID

from sqlalchemy import Table, event, insert, inspect
from sqlalchemy.orm import Mapper, Session, UOWTransaction

from persistence.base import Base, utcnow
from persistence.history import history
from persistence.mixins import ACTOR_COLUMNS, AuditOptions, SoftDeleteMixin
from persistence.models.audit_log import AuditLog
from persistence.references import remember_rows
from persistence.validation import check_changed, check_values
from persistence.write_guard import auditing

Action = Literal["create", "update", "delete", "soft_delete", "restore"]

AUDIT_CONTEXT = "auditql.audit_context"
"""The key of the :class:`AuditContext` in ``Session.info``."""

# Columns that describe the bookkeeping of a change, not the change: the audit entry
# already records who and when, and the version counter moves on every update.
_BOOKKEEPING = frozenset({"id", "created_at", "updated_at", "version"}) | ACTOR_COLUMNS
_REDACTED = "[redacted]"


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Who is writing, and where the request came from."""

    actor_id: int | None
    request_id: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None


class AuditingSession(Session):
    """The session class of a unit of work; see the module docstring."""

    def flush(self, objects: Sequence[Any] | None = None) -> None:
        # The flush's statements (and the audit entries it appends) are audited: the
        # write guard lets them through. Ref: persistence.write_guard
        with auditing():
            super().flush(objects)

    @property
    def audit_context(self) -> AuditContext:
        context = self.info.get(AUDIT_CONTEXT)
        if not isinstance(context, AuditContext):
            raise RuntimeError("writes must go through a UnitOfWork, which knows the actor")
        return context


class ReadOnlySession(Session):
    """The session class of read paths: flushing a change is a programming error."""


@event.listens_for(ReadOnlySession, "before_flush")
def _refuse_writes(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    if session.new or session.deleted or any(session.is_modified(o) for o in session.dirty):
        raise RuntimeError("read sessions cannot write; use a UnitOfWork")


@event.listens_for(AuditingSession, "before_flush")
def _stamp(session: AuditingSession, _flush: UOWTransaction, _instances: object) -> None:
    actor = session.audit_context.actor_id
    for obj in (*session.new, *session.dirty):
        check_changed(obj)
    for obj in session.new:
        if isinstance(obj, AuditLog):
            raise RuntimeError("audit entries are written by the unit of work only")
        for key in _stamped(type(obj)):
            setattr(obj, key, actor)
    for obj in session.dirty:
        changed = _changed_keys(obj)
        if not changed:
            continue
        if "updated_by_id" in inspect(obj).mapper.column_attrs:
            obj.updated_by_id = actor
        if isinstance(obj, SoftDeleteMixin) and "deleted_at" in changed:
            obj.deleted_by_id = actor if obj.deleted_at is not None else None


@event.listens_for(AuditingSession, "after_flush")
def _record(session: AuditingSession, _flush: UOWTransaction) -> None:
    # The attribute history still holds the pre-flush values here.
    # Ref: https://docs.sqlalchemy.org/en/20/orm/events.html#sqlalchemy.orm.SessionEvents.after_flush
    context = session.audit_context
    entries = [_created(context, type(obj), inspect(obj).dict) for obj in session.new]
    for obj in session.dirty:
        changes = _changes(obj)
        if changes:
            entries.append(
                _entry(context, _update_action(obj, changes), type(obj), inspect(obj).dict, changes)
            )
    for obj in session.deleted:
        values = inspect(obj).dict
        entries.append(
            _entry(context, "delete", type(obj), values, _snapshot(type(obj), values, new=False))
        )
    if entries:
        session.connection().execute(insert(AuditLog), entries)


@auditing()
def bulk_insert(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """INSERT many rows of ``model`` in one statement, stamped and audited.

    Fills in the column defaults the ORM would (ids, timestamps, versions) in the given
    dicts, so the caller can read them back.
    """
    if not rows:
        return
    if not isinstance(session, AuditingSession):
        raise RuntimeError("writes must go through a UnitOfWork, which knows the actor")
    context = session.audit_context
    mapper: Mapper[Any] = inspect(model)
    now = utcnow()
    stamped = _stamped(model)
    for row in rows:
        for attr in mapper.column_attrs:
            column = attr.columns[0]
            if attr.key in stamped:
                row[attr.key] = context.actor_id
            elif attr.key in ("created_at", "updated_at"):
                row.setdefault(attr.key, now)
            elif attr.key not in row and column.default is not None:
                row[attr.key] = _default_value(column.default)
    for row in rows:
        check_values(mapper.local_table.columns, row)
    remember_rows(session, mapper.local_table.columns, rows)
    keys = [str(column.key) for column in mapper.primary_key]
    # Core statements on the tables: the ORM's bulk path would only sort the same
    # dicts into the same INSERTs, at about a third of the whole cost.
    connection = session.connection()
    table = cast(Table, mapper.local_table)
    if all(row.get(key) is not None for row in rows for key in keys):
        connection.execute(insert(table), rows)
    else:  # database-generated keys (users): read them back in parameter order
        stmt = insert(table).returning(*mapper.primary_key, sort_by_parameter_order=True)
        for row, generated in zip(rows, connection.execute(stmt, rows), strict=True):
            row.update(zip(keys, generated, strict=True))
    entries = [_created(context, model, row) for row in rows]
    connection.execute(insert(cast(Table, AuditLog.__table__)), entries)


def _default_value(default: Any) -> Any:
    if default.is_callable:
        return default.arg({})
    return default.arg


def _changed_keys(obj: object) -> set[str]:
    state = inspect(obj)
    options = _options(type(obj))
    return {
        attr.key
        for attr in state.mapper.column_attrs
        if attr.key not in options.__audit_ignored__ and history(obj, attr.key).has_changes()
    }


def _changes(obj: object) -> dict[str, list[Any]]:
    options = _options(type(obj))
    changes: dict[str, list[Any]] = {}
    for attr in inspect(obj).mapper.column_attrs:
        if not _audited(attr.key, options):
            continue
        change = history(obj, attr.key)
        if change.has_changes():
            old = change.deleted[0] if change.deleted else None
            new = change.added[0] if change.added else None
            changes[attr.key] = [
                _jsonable(attr.key, old, options),
                _jsonable(attr.key, new, options),
            ]
    return changes


def _snapshot(model: type, values: Mapping[str, Any], *, new: bool) -> dict[str, list[Any]]:
    """A created (``new``) or deleted row's audited values, as changes from or to nothing.
    ``values`` are an ORM object's loaded state or a bulk-inserted row: the same rules."""
    options, mapper = _options(model), _mapper(model)
    snapshot = {}
    for attr in mapper.column_attrs:
        value = values.get(attr.key)
        if _audited(attr.key, options) and value is not None:
            value = _jsonable(attr.key, value, options)
            snapshot[attr.key] = [None, value] if new else [value, None]
    return snapshot


def _stamped(model: type) -> tuple[str, ...]:
    """The columns a new row of ``model`` records its creator in."""
    columns = _mapper(model).column_attrs
    return tuple(key for key in ("created_by_id", "updated_by_id") if key in columns)


def _update_action(obj: object, changes: Mapping[str, list[Any]]) -> Action:
    if isinstance(obj, SoftDeleteMixin) and "deleted_at" in changes:
        return "soft_delete" if obj.deleted_at is not None else "restore"
    return "update"


def _audited(key: str, options: type[AuditOptions]) -> bool:
    return (
        key not in _BOOKKEEPING
        and key not in options.__audit_ignored__
        and key != getattr(options, "__audit_owner__", None)
    )


def _options(model: type) -> type[AuditOptions]:
    return model if issubclass(model, AuditOptions) else AuditOptions


def _jsonable(key: str, value: Any, options: type[AuditOptions]) -> Any:
    if value is None:
        return None
    if key in options.__audit_redacted__:
        return _REDACTED
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, UUID | Decimal):
        return str(value)
    return value


def _mapper(model: type) -> Mapper[Any]:
    mapper: Mapper[Any] = inspect(model)
    return mapper


def _created(context: AuditContext, model: type, values: Mapping[str, Any]) -> dict[str, Any]:
    return _entry(context, "create", model, values, _snapshot(model, values, new=True))


def _entry(
    context: AuditContext,
    action: Action,
    model: type,
    values: Mapping[str, Any],
    changes: dict[str, list[Any]],
) -> dict[str, Any]:
    owner = getattr(_options(model), "__audit_owner__", None)
    return {
        "actor_id": context.actor_id,
        "action": action,
        "entity_type": model.__tablename__,  # type: ignore[attr-defined]
        "entity_id": str(values[owner or "id"]),
        "changes": changes,
        "request_id": context.request_id,
        "ip_address": context.ip_address,
        "user_agent": context.user_agent,
    }
