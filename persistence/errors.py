"""Domain errors, and the one place where database errors become domain errors.

Messages are meant for end users: they name the field, never SQL, parameters or
constraint names. The database error is always chained (``raise ... from exc``) so the
server log keeps the whole story.

Transient errors are the other kind: the database could not serve the request just now
(it is down, full, or a statement waited too long), and the same request may succeed
later. They are recognised by SQLSTATE and exception type, never by message text.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from functools import cache

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Index,
    PrimaryKeyConstraint,
    Table,
    UniqueConstraint,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.visitors import iterate

from persistence.base import Base
from persistence.mixins import ACTOR_COLUMNS


class DomainError(Exception):
    """An expected failure: the caller did something the rules do not allow."""

    code = "DOMAIN_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(DomainError):
    code = "NOT_FOUND"

    def __init__(self, entity: str, id: object = None) -> None:
        super().__init__(f"{_humanize(entity).capitalize()} not found.")
        self.entity = entity
        self.id = id


class AlreadyExistsError(DomainError):
    code = "ALREADY_EXISTS"

    def __init__(self, entity: str, field: str) -> None:
        super().__init__(f"A {_humanize(entity)} with this {_humanize(field)} already exists.")
        self.entity = entity
        self.field = field


class InvalidReferenceError(DomainError):
    """A foreign key points at a row that does not exist (or no longer does)."""

    code = "INVALID_REFERENCE"

    def __init__(self, field: str | None) -> None:
        what = _humanize(field.removesuffix("_id")) if field else "record"
        super().__init__(f"The referenced {what} does not exist.")
        self.field = field


class ForbiddenError(DomainError):
    """The actor is known but may not do this."""

    code = "FORBIDDEN"

    def __init__(self, message: str = "You are not allowed to do this.") -> None:
        super().__init__(message)


class ConflictError(DomainError):
    """The row changed since the caller read it (optimistic locking)."""

    code = "CONFLICT"

    def __init__(self, entity: str, current_version: int | None) -> None:
        super().__init__(
            f"The {_humanize(entity)} was changed by someone else"
            + (f"; its current version is {current_version}." if current_version else ".")
        )
        self.entity = entity
        self.current_version = current_version


class ValidationError(DomainError):
    code = "VALIDATION"

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidFilterError(ValidationError):
    """A filter or ordering names a field that cannot be filtered or ordered on."""


class InvalidCursorError(ValidationError):
    """A pagination cursor was forged, corrupted or made for another ordering."""

    def __init__(self, field: str = "after") -> None:
        super().__init__(field, "The cursor is not valid for this list.")


class MultipleResultsFoundError(DomainError):
    code = "MULTIPLE_RESULTS"

    def __init__(self, entity: str) -> None:
        super().__init__(f"More than one {_humanize(entity)} matched where one was expected.")
        self.entity = entity


class TransientError(Exception):
    """The database could not serve this request now; retrying later may succeed.

    Not a DomainError: the caller broke no rule, so a mutation must not answer it as
    data. The message is for the server log: it names the cause by code, never with SQL
    or parameters."""


class DatabaseUnavailableError(TransientError):
    """No usable connection: the server is down, refusing, full or shutting down, the
    connection broke, or the pool had no free connection within ``db_pool_timeout``."""


class DatabaseTimeoutError(TransientError):
    """A statement was cancelled after waiting too long: for a lock (``lock_timeout``),
    in total (``statement_timeout``), or for SQLite's write lock (its busy timeout)."""


def _humanize(name: str) -> str:
    return name.replace("_", " ")


# SQLSTATE classes. Ref: https://www.postgresql.org/docs/15/errcodes-appendix.html
_UNIQUE, _FOREIGN_KEY, _CHECK, _NOT_NULL = "23505", "23503", "23514", "23502"
_TOO_LONG = "22001"
_TIMED_OUT = {"55P03", "57014"}  # lock_not_available (lock_timeout), query_canceled
# too_many_connections; admin_shutdown, crash_shutdown, cannot_connect_now (starting up)
_UNAVAILABLE = {"53300", "57P01", "57P02", "57P03"}
_CONNECTION_EXCEPTION = "08"  # the whole class: connection failure, does not exist, ...
# Ref: https://www.sqlite.org/rescode.html#busy (and its extended codes)
_SQLITE_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")


@dataclass(frozen=True)
class _Violation:
    kind: str  # one of the SQLSTATEs above
    table: str | None = None
    constraint: str | None = None
    columns: tuple[str, ...] = ()


def translate(exc: BaseException) -> DomainError | TransientError | None:
    """The domain or transient error an exception from the database layer stands for,
    if any."""
    if isinstance(exc, DomainError):
        return exc
    if fault := transient_fault(exc):
        return fault
    if isinstance(exc, StaleDataError):
        # The version counter guarded an UPDATE/DELETE whose row had moved on. The entity
        # and its current version are unknown here; the unit of work fills them in.
        return ConflictError(_entity_from_stale(exc), None)
    if isinstance(exc, sa_exc.DBAPIError) and getattr(exc.orig, "sqlstate", None) == _TOO_LONG:
        return ValidationError(None, "A value is too long.")
    if isinstance(exc, sa_exc.IntegrityError):
        violation = _postgres_violation(exc) or _sqlite_violation(exc)
        return _from_violation(violation) if violation else None
    return None


def transient_fault(exc: BaseException) -> TransientError | None:
    """The transient error ``exc`` stands for, if it is one: what a caller should answer
    with "retry later" rather than treat as a bug. Read paths let database exceptions
    through as they are, so this also recognises them unwrapped."""
    if isinstance(exc, TransientError):
        return exc
    if isinstance(exc, sa_exc.TimeoutError):  # QueuePool: no connection free in time
        return DatabaseUnavailableError("no pooled connection became free in time")
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    sqlite_code = getattr(exc.orig, "sqlite_errorname", None) or ""
    if sqlstate in _TIMED_OUT:
        return DatabaseTimeoutError(f"statement cancelled (SQLSTATE {sqlstate})")
    if sqlite_code.startswith(_SQLITE_BUSY):
        return DatabaseTimeoutError(f"{sqlite_code} after the busy timeout")
    if (
        exc.connection_invalidated  # SQLAlchemy's dialect saw a disconnect
        or sqlstate in _UNAVAILABLE
        or sqlstate.startswith(_CONNECTION_EXCEPTION)
    ):
        code = f" (SQLSTATE {sqlstate})" if sqlstate else ""
        return DatabaseUnavailableError(f"database connection lost or refused{code}")
    return None


def _entity_from_stale(exc: StaleDataError) -> str:
    match = re.search(r"table '(\w+)'", str(exc))
    return _entity_name(match.group(1)) if match else "record"


def _postgres_violation(exc: sa_exc.IntegrityError) -> _Violation | None:
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is None:
        return None
    driver = getattr(exc.orig, "orig", None)
    column = getattr(driver, "column_name", None)
    return _Violation(
        kind=sqlstate,
        table=getattr(driver, "table_name", None),
        constraint=getattr(driver, "constraint_name", None),
        columns=(column,) if column else (),
    )


_SQLITE_KINDS = {
    "SQLITE_CONSTRAINT_UNIQUE": _UNIQUE,
    "SQLITE_CONSTRAINT_PRIMARYKEY": _UNIQUE,
    "SQLITE_CONSTRAINT_FOREIGNKEY": _FOREIGN_KEY,
    "SQLITE_CONSTRAINT_CHECK": _CHECK,
    "SQLITE_CONSTRAINT_NOTNULL": _NOT_NULL,
}


def _sqlite_violation(exc: sa_exc.IntegrityError) -> _Violation | None:
    if not isinstance(exc.orig, sqlite3.IntegrityError):
        return None
    kind = _SQLITE_KINDS.get(getattr(exc.orig, "sqlite_errorname", ""))
    if kind is None:
        return None
    # "UNIQUE constraint failed: index 'uq_tags_name_lower'"
    # "UNIQUE constraint failed: users.email" / "NOT NULL constraint failed: posts.title"
    # "CHECK constraint failed: ck_posts_title_length" / "FOREIGN KEY constraint failed"
    detail = str(exc.orig).partition(" failed: ")[2]
    if match := re.fullmatch(r"index '(\w+)'", detail):
        return _Violation(kind, constraint=match.group(1))
    if kind == _CHECK:
        return _Violation(kind, constraint=detail or None)
    pairs = [part.strip().split(".", 1) for part in detail.split(",") if "." in part]
    if pairs:
        return _Violation(kind, table=pairs[0][0], columns=tuple(col for _, col in pairs))
    return _Violation(kind)


def _from_violation(violation: _Violation) -> DomainError:
    described = _describe(violation)
    table, field = described if described else (violation.table, None)
    entity = _entity_name(table) if table else "record"
    if violation.kind == _UNIQUE:
        return AlreadyExistsError(entity, field or "value")
    if violation.kind == _FOREIGN_KEY:
        return InvalidReferenceError(field)
    if violation.kind == _NOT_NULL:
        return ValidationError(field, f"{_humanize(field or 'value').capitalize()} is required.")
    return ValidationError(field, f"{_humanize(field or 'value').capitalize()} is not valid.")


def _describe(violation: _Violation) -> tuple[str, str | None] | None:
    """(table, field) for the violated constraint, from the metadata."""
    if violation.constraint:
        return _constraint_fields().get(violation.constraint)
    if violation.table and violation.columns:
        table = Base.metadata.tables.get(violation.table)
        if table is None:
            return None
        if violation.kind == _UNIQUE:
            for constraint, field in _unique_fields(table):
                if constraint == set(violation.columns):
                    return table.name, field
        return table.name, violation.columns[0]
    return None


@cache
def _constraint_fields() -> dict[str, tuple[str, str | None]]:
    """Every named constraint and index in the metadata -> (table, the field it guards)."""
    fields: dict[str, tuple[str, str | None]] = {}
    for table in Base.metadata.tables.values():
        for item in (*table.constraints, *table.indexes):
            name = getattr(item, "name", None)
            if isinstance(name, str):
                fields[name] = (table.name, _field_of(table, item))
    return fields


def _unique_fields(table: Table) -> list[tuple[set[str], str | None]]:
    unique = [
        *(c for c in table.constraints if isinstance(c, UniqueConstraint | PrimaryKeyConstraint)),
        *(i for i in table.indexes if i.unique),
    ]
    return [({col.name for col in _columns(item)}, _field_of(table, item)) for item in unique]


def _field_of(table: Table, item: object) -> str | None:
    """The field a constraint guards, as the client knows it: a CHECK's column by its
    name; otherwise the first column that input sets (a bookmark is unique per user and
    post: its creator is stamped, so a duplicate is about the post)."""
    if isinstance(item, CheckConstraint) and isinstance(item.name, str):
        # ck_<table>_<column>_<what>: the longest column name the rule's name starts with.
        own = item.name.removeprefix(f"ck_{table.name}_")
        matches = [c.name for c in table.columns if own.startswith(c.name)]
        return max(matches, key=len) if matches else None
    columns = [column.name for column in _columns(item)]
    given = [name for name in columns if name not in ACTOR_COLUMNS] or columns
    return given[0] if given else None


def _columns(item: object) -> list[Column[object]]:
    if isinstance(item, ForeignKeyConstraint):
        return list(item.columns)
    if isinstance(item, Index):
        return [
            node
            for expression in item.expressions
            if not isinstance(expression, str)
            for node in iterate(expression)
            if isinstance(node, Column)
        ]
    return list(getattr(item, "columns", []))


def entity_name(model: type) -> str:
    """``FeatureFlag`` -> ``feature_flag``: how errors name an entity."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", model.__name__).lower()


def _entity_name(table: str) -> str:
    for mapper in Base.registry.mappers:
        if mapper.local_table.name == table:  # type: ignore[attr-defined]
            return entity_name(mapper.class_)
    return table
