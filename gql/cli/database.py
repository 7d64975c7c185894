"""The database an operator command works on: at the migration head, or one clear line.

In development on SQLite the commands bring the database to the head themselves, as
``serve`` does, so any command may be the first one run in a fresh checkout. Elsewhere
migrating is a release step (``auditql migrate``), and a command refuses a database that
is not at the head before it writes anything.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from gql.settings import Settings
from persistence import migrations
from persistence.engine import Database
from persistence.errors import DomainError

# What SQLite writes beside a database file while it is open.
_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


class NotMigratedError(DomainError):
    """The database is not at the migration head; the message says what to run."""


def migrates_itself(settings: Settings) -> bool:
    """Whether the commands (``serve`` included) apply new migrations themselves: in
    development on SQLite."""
    return settings.is_development and settings.is_sqlite


@asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[Database]:
    """The settings' database, at the migration head. A SQLite file that this creates is
    removed again when the block fails: a failed command leaves no database behind."""
    new_file = _new_sqlite_file(settings)
    try:
        database = Database.from_settings(settings)
        try:
            await _bring_to_head(settings, database)
            yield database
        finally:
            await database.dispose()
    except BaseException:
        if new_file is not None:
            for path in (new_file, *(Path(f"{new_file}{end}") for end in _SQLITE_COMPANIONS)):
                path.unlink(missing_ok=True)
        raise


async def _bring_to_head(settings: Settings, database: Database) -> None:
    reason = await migrations.behind(database.engine)
    if reason is None:
        return
    if not migrates_itself(settings):
        raise NotMigratedError(reason)
    await migrations.run(database.engine, "upgrade", "head", progress=True)


def _new_sqlite_file(settings: Settings) -> Path | None:
    """The SQLite file the settings name, when it does not exist yet."""
    name = make_url(settings.database_url).database if settings.is_sqlite else None
    if not name or name == ":memory:" or Path(name).exists():
        return None
    return Path(name)


def connection_problem(exc: BaseException) -> str | None:
    """One line for an operator when ``exc`` is the database refusing the connection
    (wrong password, no such role or database) or not answering; None otherwise."""
    seen: BaseException | None = exc
    while seen is not None:
        sqlstate = getattr(seen, "sqlstate", None)
        refused = isinstance(sqlstate, str) and sqlstate[:2] in _REFUSED_CONNECTION
        if refused or isinstance(seen, ConnectionError | TimeoutError | socket.gaierror):
            return f"cannot connect to the database (AUDITQL_DATABASE_URL): {seen}"
        seen = seen.__cause__ or seen.__context__
    return None


# SQLSTATE classes: 28 invalid authorization (password, role), 3D no such database.
_REFUSED_CONNECTION = ("28", "3D")
