"""Many rows by COPY, in the transaction of a SQLAlchemy connection (PostgreSQL).

asyncpg's binary COPY sends rows for a fraction of what an INSERT's executemany costs
per row, on both sides (``bench/bulk.py`` measures it). The values go through each
column's bind processing first, as the same values would in an INSERT (JSON is
serialised, enums become their names), so the rows read back the same either way.
Defaults the database fills in (``audit_log.xid``) are filled in by COPY too.

COPY is not part of the DBAPI: it runs on the driver's connection. The SQLAlchemy
dialect begins its transaction lazily, at the first statement; a COPY sent first would
run in a transaction of its own, so the transaction is begun here. Its errors come
back as SQLAlchemy's, as an INSERT's would (a duplicate is an ``IntegrityError`` with
the constraint's name), so callers translate both alike. It has the connection's
command timeout; it waits on no lock a unit of work's budget accounts for.
Ref: https://magicstack.github.io/asyncpg/current/api/index.html#asyncpg.connection.Connection.copy_records_to_table
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.util import await_

COPY_FROM = 100
"""Rows from which COPY is used: below it, its own round trips cost more than it saves."""


def copy_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """COPY ``rows`` (dicts with the same keys, the columns' keys) into ``table``."""
    keys = list(rows[0])
    dialect = connection.dialect
    processors = [_Processed(table.c[key].type.dialect_impl(dialect).bind_processor(dialect))
                  for key in keys]  # fmt: skip
    values = itemgetter(*keys)
    records = [
        tuple(process(value) for value, process in zip(values(row), processors, strict=True))
        for row in rows
    ]
    adapted: Any = connection.connection.dbapi_connection
    try:
        if adapted._transaction is None:
            await_(adapted._start_transaction())
        await_(
            adapted._connection.copy_records_to_table(
                table.name, records=records, columns=[table.c[key].name for key in keys]
            )
        )
    except Exception as error:
        try:
            adapted._handle_exception(error)  # raises the DBAPI error asyncpg's stands for
        except dialect.loaded_dbapi.Error as dbapi_error:
            raise DBAPIError.instance(
                f"COPY {table.name}", None, dbapi_error, dialect.loaded_dbapi.Error,
                hide_parameters=True, dialect=dialect,
            ) from dbapi_error  # fmt: skip


class _Processed:
    """A column's bind processing, which a bulk insert's rows often ask of one value
    (their shared timestamps, their actor): the last value's result is kept."""

    __slots__ = ("_last", "_processor", "_result")

    def __init__(self, processor: Callable[[Any], Any] | None) -> None:
        self._processor = processor
        self._last: Any = None
        self._result: Any = None

    def __call__(self, value: Any) -> Any:
        if self._processor is None or value is None:
            return value
        if value is not self._last:
            self._last, self._result = value, self._processor(value)
        return self._result
