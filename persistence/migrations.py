"""Running the Alembic migrations from Python (the CLI, the tests, the release step)."""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.write_guard import auditing

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


def config(connection: Connection | None = None) -> Config:
    """The project's Alembic configuration, optionally bound to an open connection."""
    # stdout now, not the one alembic captured at import (CLI output can be redirected).
    alembic_config = Config(ALEMBIC_INI, stdout=sys.stdout)
    alembic_config.attributes["connection"] = connection
    return alembic_config


async def run(
    engine: AsyncEngine, name: str, *args: str, progress: bool = False, **kwargs: Any
) -> None:
    """``alembic <name> <args>`` against ``engine``, e.g. ``run(engine, "upgrade", "head")``.

    With ``progress``, each migration step is reported on stderr as it runs."""

    def _run(connection: Connection) -> None:
        getattr(command, name)(config(connection), *args, **kwargs)

    # A migration's data statements are the schema owner's, not a unit of work's.
    with _reporting(progress), auditing():
        async with engine.begin() as connection:
            await connection.run_sync(_run)


@functools.cache
def head() -> str:
    """The revision the code expects the database at: the newest migration."""
    head = ScriptDirectory.from_config(config()).get_current_head()
    assert head is not None, "alembic/versions holds no migration"
    return head


async def behind(engine: AsyncEngine) -> str | None:
    """Why the database is not at :func:`head`, in a sentence; None when it is. Raises
    what the database raises when it cannot be asked."""
    async with engine.connect() as connection:
        migrated = await connection.run_sync(lambda c: inspect(c).has_table("alembic_version"))
        found = (
            await connection.scalar(text("SELECT version_num FROM alembic_version"))
            if migrated
            else None
        )
    if found == head():
        return None
    where = "was never migrated" if found is None else f"is at revision {found}"
    return f"the database {where}, the code expects {head()}: run `auditql migrate`"


@contextlib.contextmanager
def _reporting(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    logger = logging.getLogger("alembic.runtime.migration")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
