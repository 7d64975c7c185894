"""Stamping and audit entries, applied to every write a unit of work flushes.

``AuditingSession`` is the session class of every unit of work. Before a flush it
stamps ``created_by_id``/``updated_by_id`` (and ``deleted_by_id`` on soft delete) with
the actor; after the flush, while the attribute history still holds the old values, it
appends one ``audit_log`` row per inserted, updated or deleted row, in the same
transaction. Bulk inserts that bypass the ORM flush go through :func:`bulk_insert`,
which applies the same rules. ``ReadOnlySession`` refuses to flush anything, so no
write can slip past this module through a read session. Personal values (the actor's
address and user agent, the columns a model lists in ``__audit_personal__``) are
recorded sealed under their user's key (:mod:`persistence.personal`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, cast
from uuid import UUID

from sqlalchemy import Connection, Table, event, insert, inspect
from sqlalchemy.orm import Mapper, Session, UOWTransaction

from persistence.base import Base, utcnow
from persistence.chain import append_pending, note_entries
from persistence.held import hold, send
from persistence.history import history
from persistence.ids import uuid7
from persistence.keyring import WrappedKey
from persistence.mixins import ACTOR_COLUMNS, AuditOptions, SoftDeleteMixin
from persistence.models.audit_log import AuditLog
from persistence.models.user import User
from persistence.personal import Sealer, sealer_of
from persistence.references import remember_rows
from persistence.validation import check_changed, check_rows
from persistence.write_guard import auditing

Action = Literal["create", "update", "delete", "soft_delete", "restore", "erase"]

AUDIT_CONTEXT = "auditql.audit_context"
"""The key of the :class:`AuditContext` in ``Session.info``."""
_ACTIONS = "auditql.audit_actions"
WRITTEN = "auditql.audit_written"
"""The key in ``Session.info`` of the tables a unit of work wrote rows of."""
_HOLDING = "auditql.audit_holding"

# Columns that describe the bookkeeping of a change, not the change: the audit entry
# already records who and when, and the version counter moves on every update.
_BOOKKEEPING = frozenset({"id", "created_at", "updated_at", "version"}) | ACTOR_COLUMNS
_REDACTED = "[redacted]"
_LOG = cast(Table, AuditLog.__table__)


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Who is writing, and where the request came from."""

    actor_id: int | None
    request_id: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    actor_key: WrappedKey | None = None
    """The actor's wrapped data key, when the caller has it at hand (the token lookup
    loads it): spares the unit of work reading it. None: read it if needed."""


def record_as(session: Session, obj: object, action: Action) -> None:
    """Record the next change of ``obj`` that ``session`` flushes as ``action`` (an
    erasure is an update of the user's row, recorded as ``erase``)."""
    session.info.setdefault(_ACTIONS, {})[id(obj)] = action


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


@event.listens_for(AuditingSession, "before_commit")
def _before_commit(session: AuditingSession) -> None:
    if session.info.pop(_HOLDING, False):
        send(session.connection())  # what is still held, ahead of anything COMMIT flushes
    append_pending(session)


@event.listens_for(AuditingSession, "after_flush")
def _record(session: AuditingSession, _flush: UOWTransaction) -> None:
    # The attribute history still holds the pre-flush values here.
    # Ref: https://docs.sqlalchemy.org/en/20/orm/events.html#sqlalchemy.orm.SessionEvents.after_flush
    context = session.audit_context
    sealer = sealer_of(session)
    _know_keys(
        session.connection(),
        context,
        sealer,
        new=[(type(obj), inspect(obj).dict) for obj in session.new],
        changed=[(type(obj), inspect(obj).dict) for obj in session.dirty if _personal_changed(obj)],
        deleted=[(type(obj), inspect(obj).dict) for obj in session.deleted],
    )
    entries = [_created(context, sealer, type(obj), inspect(obj).dict) for obj in session.new]
    actions = session.info.get(_ACTIONS, {})
    for obj in session.dirty:
        changes = _changes(obj, sealer)
        if changes:
            action = actions.pop(id(obj), None) or _update_action(obj, changes)
            entries.append(_entry(context, sealer, action, type(obj), inspect(obj).dict, changes))
    for obj in session.deleted:
        values = inspect(obj).dict
        snapshot = _snapshot(type(obj), values, sealer, new=False)
        entries.append(_entry(context, sealer, "delete", type(obj), values, snapshot))
    if entries:
        session.connection().execute(insert(AuditLog), entries)
        note_entries(session, entries)
    written = {_rules(type(obj)).table for obj in (*session.new, *session.dirty, *session.deleted)}
    session.info.setdefault(WRITTEN, set()).update(written)


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
    table = cast(Table, mapper.local_table)
    rules, now = _rules(model), utcnow()
    stamps = dict.fromkeys(rules.stamped, context.actor_id)
    for row in rows:
        row.update(stamps)
        for key in rules.timestamps:
            row.setdefault(key, now)
        for key, default in rules.defaults:
            if key not in row:
                row[key] = _default_value(default)
    check_rows(table, rows)
    remember_rows(session, table.columns, rows)
    keys = [str(column.key) for column in mapper.primary_key]
    # Core statements on the tables: the ORM's bulk path would only sort the same
    # dicts into the same INSERTs, at about a third of the whole cost.
    connection = session.connection()
    known = all(row.get(key) is not None for row in rows for key in keys)
    if not known:  # database-generated keys (users): read them back in parameter order
        stmt = insert(table).returning(*mapper.primary_key, sort_by_parameter_order=True)
        for row, generated in zip(rows, connection.execute(stmt, rows), strict=True):
            row.update(zip(keys, generated, strict=True))
    sealer = sealer_of(session)
    _know_keys(connection, context, sealer, new=[(model, row) for row in rows])
    entries = _created_many(context, sealer, model, rows, now)
    if known and hold(connection, table, rows, entries):
        session.info[_HOLDING] = True
    else:
        if known:
            connection.execute(insert(table), rows)
        connection.execute(insert(_LOG), entries)
    note_entries(session, entries)
    session.info.setdefault(WRITTEN, set()).add(table.name)


def _know_keys(
    connection: Connection,
    context: AuditContext,
    sealer: Sealer,
    *,
    new: Iterable[tuple[type, Mapping[str, Any]]] = (),
    changed: Iterable[tuple[type, Mapping[str, Any]]] = (),
    deleted: Iterable[tuple[type, Mapping[str, Any]]] = (),
) -> None:
    """Make sure ``sealer`` has the keys the entries of these rows will be sealed with:
    the actor's, when there is an address or user agent to seal, and those of the
    subjects of personal values; new users get theirs."""
    new, deleted = list(new), list(deleted)
    made = [values["id"] for model, values in new if issubclass(model, User)]
    subjects = {_rules(model).subject_of(values) for model, values in changed}
    subjects |= {
        _rules(model).subject_of(values)
        for model, values in (*new, *deleted)
        if _holds(model, values)
    }
    if context.actor_id is not None and (context.ip_address or context.user_agent):
        subjects.add(context.actor_id)
    subjects.discard(None)
    if subjects or made:
        sealer.prepare(connection, cast("set[int]", subjects), made)


def _holds(model: type, values: Mapping[str, Any]) -> bool:
    """Whether a row holds personal values."""
    personal = _rules(model).personal
    return bool(personal) and any(values.get(key) is not None for key in personal)


def _personal_changed(obj: object) -> bool:
    return any(history(obj, key).has_changes() for key in _rules(type(obj)).personal)


def _default_value(default: Any) -> Any:
    if default.is_callable:
        return default.arg({})
    return default.arg


def _changed_keys(obj: object) -> set[str]:
    return {key for key in _rules(type(obj)).tracked if history(obj, key).has_changes()}


def _changes(obj: object, sealer: Sealer) -> dict[str, list[Any]]:
    rules, values = _rules(type(obj)), inspect(obj).dict
    changes: dict[str, list[Any]] = {}
    for key in rules.audited:
        change = history(obj, key)
        if change.has_changes():
            old = change.deleted[0] if change.deleted else None
            new = change.added[0] if change.added else None
            changes[key] = [
                rules.recorded(key, old, values, sealer),
                rules.recorded(key, new, values, sealer),
            ]
    return changes


def _snapshot(
    model: type, values: Mapping[str, Any], sealer: Sealer, *, new: bool
) -> dict[str, list[Any]]:
    """A created (``new``) or deleted row's audited values, as changes from or to nothing.
    ``values`` are an ORM object's loaded state or a bulk-inserted row: the same rules."""
    rules = _rules(model)
    snapshot = {}
    for key in rules.audited:
        value = values.get(key)
        if value is not None:
            if key in rules.plain:
                value = _jsonable(value)
            else:
                value = rules.recorded(key, value, values, sealer)
            snapshot[key] = [None, value] if new else [value, None]
    return snapshot


def _stamped(model: type) -> tuple[str, ...]:
    """The columns a new row of ``model`` records its creator in."""
    return _rules(model).stamped


def _update_action(obj: object, changes: Mapping[str, list[Any]]) -> Action:
    if isinstance(obj, SoftDeleteMixin) and "deleted_at" in changes:
        return "soft_delete" if obj.deleted_at is not None else "restore"
    return "update"


@dataclass(frozen=True, slots=True)
class _Rules:
    """How entries record a model's rows: read off its mapper and AuditOptions once."""

    table: str
    tracked: tuple[str, ...]
    """The columns whose changes count as a change of the row (not ignored ones)."""
    audited: tuple[str, ...]
    """The columns whose values entries record, in column order."""
    stamped: tuple[str, ...]
    """The columns a new row records its creator in."""
    timestamps: tuple[str, ...]
    """The columns a new row records the time of its writing in."""
    defaults: tuple[tuple[str, Any], ...]
    """The other columns with a default made on this side, and their defaults."""
    redacted: frozenset[str]
    personal: frozenset[str]
    plain: frozenset[str]
    """The audited columns recorded as they are (neither redacted nor personal)."""
    subject: str | None
    entity_id: str
    """The column an entry names its entity by: the owner's, or the row's id."""

    def subject_of(self, values: Mapping[str, Any]) -> int | None:
        """The user whose personal values a row holds."""
        return None if self.subject is None else cast("int | None", values.get(self.subject))

    def recorded(self, key: str, value: Any, values: Mapping[str, Any], sealer: Sealer) -> Any:
        """A value as an entry records it: JSON-able, and sealed if it is personal."""
        if value is None:
            return None
        if key in self.redacted:
            return _REDACTED
        value = _jsonable(value)
        if key not in self.personal:
            return value
        return sealer.seal(self.subject_of(values), f"{self.table}.{key}", value)


_RULES: dict[type, _Rules] = {}


def _rules(model: type) -> _Rules:
    rules = _RULES.get(model)
    if rules is None:
        rules = _RULES[model] = _read_rules(model)
    return rules


def _read_rules(model: type) -> _Rules:
    options = model if issubclass(model, AuditOptions) else AuditOptions
    owner = getattr(options, "__audit_owner__", None)
    attrs = _mapper(model).column_attrs
    columns = [attr.key for attr in attrs]
    tracked = tuple(key for key in columns if key not in options.__audit_ignored__)
    stamped = tuple(key for key in ("created_by_id", "updated_by_id") if key in columns)
    timestamps = tuple(key for key in ("created_at", "updated_at") if key in columns)
    audited = tuple(key for key in tracked if key not in _BOOKKEEPING and key != owner)
    return _Rules(
        table=model.__tablename__,  # type: ignore[attr-defined]
        tracked=tracked,
        audited=audited,
        stamped=stamped,
        timestamps=timestamps,
        defaults=tuple(
            (attr.key, attr.columns[0].default)
            for attr in attrs
            if attr.columns[0].default is not None and attr.key not in (*stamped, *timestamps)
        ),
        redacted=options.__audit_redacted__,
        personal=options.__audit_personal__,
        plain=frozenset(audited) - options.__audit_redacted__ - options.__audit_personal__,
        subject=options.__audit_subject__,
        entity_id=owner or "id",
    )


def _jsonable(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is bool or kind is float:
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, UUID | Decimal) or _beyond_json_integers(value):
        return str(value)
    return value


def _beyond_json_integers(value: Any) -> bool:
    """An integer JSON cannot carry exactly (I-JSON, RFC 7493: within ±(2**53-1)); the
    audit chain's canonical form (RFC 8785) refuses it, so it is recorded as a string."""
    return isinstance(value, int) and not -(2**53) < value < 2**53


def _mapper(model: type) -> Mapper[Any]:
    mapper: Mapper[Any] = inspect(model)
    return mapper


def _created(
    context: AuditContext,
    sealer: Sealer,
    model: type,
    values: Mapping[str, Any],
) -> dict[str, Any]:
    snapshot = _snapshot(model, values, sealer, new=True)
    return _entry(context, sealer, "create", model, values, snapshot)


def _created_many(
    context: AuditContext,
    sealer: Sealer,
    model: type,
    rows: Sequence[Mapping[str, Any]],
    at: datetime,
) -> list[dict[str, Any]]:
    """The entries of :func:`_created` for many rows written at ``at``, with the fields
    they share worked out once."""
    # Each entry's own id, entity and changes replace the first row's in these.
    shared = _entry(context, sealer, "create", model, rows[0], {}, at)
    entity_id = _rules(model).entity_id
    return [
        {
            **shared,
            "id": uuid7(),
            "entity_id": str(row[entity_id]),
            "changes": _snapshot(model, row, sealer, new=True),
        }
        for row in rows
    ]


def _entry(
    context: AuditContext,
    sealer: Sealer,
    action: Action,
    model: type,
    values: Mapping[str, Any],
    changes: dict[str, list[Any]],
    at: datetime | None = None,
) -> dict[str, Any]:
    rules = _rules(model)
    ip_address, user_agent = sealer.actor_fields(context.ip_address, context.user_agent)
    return {
        # Made here, not by the column defaults: SQLite chains the entries it wrote
        # by id before COMMIT (persistence.chain).
        "id": uuid7(),
        "created_at": at or utcnow(),
        "actor_id": context.actor_id,
        "action": action,
        "entity_type": rules.table,
        "entity_id": str(values[rules.entity_id]),
        "changes": changes,
        "request_id": context.request_id,
        "ip_address": ip_address,
        "user_agent": user_agent,
    }
