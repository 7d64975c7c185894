"""New rows held until their transaction needs them, so that a unit of work that only
creates a row costs one statement on PostgreSQL.

The rows a unit of work adds (with their audit entries) need not reach the database
before anything else does: a later statement of the same transaction may read them or
refer to them, and COMMIT makes them durable. So on a PostgreSQL writer :func:`hold`
keeps them on the connection, and they are sent

- before the next statement the connection runs, whatever runs it (a query, an ORM
  flush, a Core statement), in the order they were held;
- at COMMIT, if nothing sent them before (the unit of work's session sends them
  first thing, :mod:`persistence.audit`, so a failure is the commit's like any other);
- never, if the transaction rolls back first (they would have been rolled back), or
  its savepoint does (what was held before the savepoint went with its SAVEPOINT).

When the whole transaction is one new row and its entry, :func:`commit_alone` sends them
as one statement, ``WITH row AS (INSERT INTO <table> ...) INSERT INTO audit_log ...``,
outside an explicit transaction: a single statement is atomic, so nothing is ever
half-written, and the BEGIN and COMMIT round trips are saved. It goes through the same
Core execution as any statement (deadlines, the write guard, error translation).

Many rows at once go by COPY (:mod:`persistence.copy`), rows and entries alike.
Ref: https://www.postgresql.org/docs/15/queries-with.html#QUERIES-WITH-MODIFYING
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Insert, Table, bindparam, event, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.copy import COPY_FROM, copy_rows
from persistence.models.audit_log import AuditLog
from persistence.write_guard import auditing

_HELD = "auditql.held"
"""``Connection.info``: the held inserts, in the order held."""
_RAN = "auditql.ran"
"""``Connection.info``: whether the transaction has sent a statement."""
_LOG = cast(Table, AuditLog.__table__)
_TOGETHER: dict[tuple[str, tuple[str, ...], tuple[str, ...]], Insert] = {}


@dataclass(frozen=True, slots=True)
class _Held:
    table: Table
    rows: Sequence[Mapping[str, Any]]
    entries: Sequence[Mapping[str, Any]]


def holds(engine: AsyncEngine) -> None:
    """Make ``engine`` (a PostgreSQL writer's) hold new rows: see the module."""
    sync = engine.sync_engine
    event.listen(sync, "begin", _begin)
    event.listen(sync, "before_execute", _before_execute)
    event.listen(sync, "rollback", _drop)
    event.listen(sync, "rollback_savepoint", _drop)


def hold(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    entries: Sequence[Mapping[str, Any]],
) -> bool:
    """Hold ``rows`` of ``table`` and their audit ``entries`` until the transaction needs
    them; False (nothing held) if ``connection``'s engine does not hold rows."""
    if _RAN not in connection.info:  # set at BEGIN by the engines that hold rows
        return False
    connection.info.setdefault(_HELD, []).append(_Held(table, rows, entries))
    return True


def send(connection: Connection) -> None:
    """Send the held rows and entries now, in the order they were held."""
    held: list[_Held] = connection.info.pop(_HELD, [])
    with auditing():
        for each in held:
            if len(each.rows) >= COPY_FROM:
                copy_rows(connection, each.table, each.rows)
                copy_rows(connection, _LOG, each.entries)
            else:
                connection.execute(insert(each.table), list(each.rows))
                connection.execute(insert(_LOG), list(each.entries))


def commit_alone(connection: Connection) -> bool:
    """If the transaction holds one row and its entry and has sent nothing yet, send
    them as one statement in autocommit mode, and say so (COMMIT has nothing left to
    do then). Only where autocommit means what it says: not behind PgBouncer, whose
    per-transaction settings ride with BEGIN (:mod:`persistence.pgbouncer`)."""
    held: list[_Held] | None = connection.info.get(_HELD)
    if connection.info.get(_RAN) or not held or len(held) > 1 or len(held[0].rows) != 1:
        return False
    del connection.info[_HELD]
    [row], [entry] = held[0].rows, held[0].entries
    statement = _together(held[0].table, tuple(row), tuple(entry))
    parameters = {f"row_{k}": v for k, v in row.items()}
    parameters.update({f"entry_{k}": v for k, v in entry.items()})
    driver = connection.connection.dbapi_connection
    driver.autocommit = True  # type: ignore[union-attr]
    try:
        with auditing():
            connection.execute(statement, parameters)
    finally:
        driver.autocommit = False  # type: ignore[union-attr]
    return True


def _together(table: Table, row: tuple[str, ...], entry: tuple[str, ...]) -> Insert:
    """The row's INSERT and its entry's in one statement, built once per shape."""
    key = (table.name, row, entry)
    statement = _TOGETHER.get(key)
    if statement is None:
        created = insert(table).values(_parameters(table, "row", row)).cte("created")
        statement = insert(_LOG).values(_parameters(_LOG, "entry", entry)).add_cte(created)
        _TOGETHER[key] = statement
    return statement


def _parameters(table: Table, prefix: str, keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: bindparam(f"{prefix}_{key}", type_=table.c[key].type) for key in keys}


def _begin(connection: Connection) -> None:
    connection.info.pop(_HELD, None)
    connection.info[_RAN] = False


def _before_execute(connection: Connection, *_: Any) -> None:
    connection.info[_RAN] = True
    if connection.info.get(_HELD):
        send(connection)


def _drop(connection: Connection, *_: Any) -> None:
    if not connection.invalidated:  # else its info went with its DBAPI connection
        connection.info.pop(_HELD, None)
