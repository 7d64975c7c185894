"""Counting the SQL statements an operation sends (to guard against N+1 queries)."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import asyncpg
from sqlalchemy import event

from persistence.engine import Database

# The test harness wraps each session in a SAVEPOINT; only the application's count.
_HARNESS = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


@contextlib.contextmanager
def count_statements(database: Database) -> Iterator[list[str]]:
    """The statements sent on every engine of ``database`` (reads and writes)."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith(_HARNESS):
            statements.append(statement)

    for engine in database.engines:
        event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in database.engines:
            event.remove(engine.sync_engine, "before_cursor_execute", record)


class ServerStatements:
    """The statements the server ran in one database since :meth:`reset`, by normalised
    text, as ``pg_stat_statements`` counts them: BEGIN, COMMIT and ROLLBACK too, and
    only statements that completed. Its own queries run from another database."""

    def __init__(self, connection: asyncpg.Connection, database: str) -> None:
        self._connection = connection
        self._database = database

    async def reset(self) -> None:
        await self._connection.execute("SELECT pg_stat_statements_reset()")

    async def counted(self) -> Counter[str]:
        rows = await self._connection.fetch(
            "SELECT query, calls FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)",
            self._database,
        )
        counts: Counter[str] = Counter()
        for row in rows:
            counts[" ".join(row["query"].split())] += row["calls"]
        return counts
