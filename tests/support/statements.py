"""Counting the SQL statements an operation sends (to guard against N+1 queries)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

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
