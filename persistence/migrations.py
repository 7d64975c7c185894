"""Running the Alembic migrations from Python (the CLI, the tests, the release step).

Alembic is imported by the functions that run it, not with this module: a server imports
this module for its readiness check, which needs only the head revision, and importing
Alembic (every dialect's DDL, mako, pygments) would cost a server started with
``--no-migrate`` about 150 ms of its start and 7 MB for as long as it runs."""

from __future__ import annotations

import ast
import contextlib
import functools
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.write_guard import auditing

if TYPE_CHECKING:
    from alembic.config import Config

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
VERSIONS = ALEMBIC_INI.with_name("alembic") / "versions"
# The identifiers a migration file declares, each on a line of its own as Alembic's
# template writes them: ``down_revision: str | None = "cfe7dd55f584"``.
_DECLARED = re.compile(r"^(revision|down_revision)\b[^=\n]*=\s*(.+?)\s*$", re.MULTILINE)


def config(connection: Connection | None = None) -> Config:
    """The project's Alembic configuration, optionally bound to an open connection."""
    from alembic.config import Config

    # stdout now, not the one alembic captured at import (CLI output can be redirected).
    alembic_config = Config(ALEMBIC_INI, stdout=sys.stdout)
    alembic_config.attributes["connection"] = connection
    return alembic_config


async def run(
    engine: AsyncEngine, name: str, *args: str, progress: bool = False, **kwargs: Any
) -> None:
    """``alembic <name> <args>`` against ``engine``, e.g. ``run(engine, "upgrade", "head")``.

    With ``progress``, each migration step is reported on stderr as it runs."""
    from alembic import command

    def _run(connection: Connection) -> None:
        getattr(command, name)(config(connection), *args, **kwargs)

    # A migration's data statements are the schema owner's, not a unit of work's.
    with _reporting(progress), auditing():
        async with engine.begin() as connection:
            await connection.run_sync(_run)


@functools.cache
def head() -> str:
    """The revision the code expects the database at: the newest migration, the one that
    no other names as its ``down_revision``.

    Read from the files' declarations rather than through Alembic's ScriptDirectory,
    which imports Alembic and runs every migration module: the readiness check needs
    this one identifier. tests/persistence/test_migrations.py checks that Alembic
    finds the same head."""
    revisions: set[str] = set()
    replaced: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        declared = {
            name: ast.literal_eval(value) for name, value in _DECLARED.findall(path.read_text())
        }
        revisions.add(declared["revision"])
        down = declared.get("down_revision")
        replaced.update((down,) if isinstance(down, str) else down or ())
    heads = revisions - replaced
    assert len(heads) == 1, f"alembic/versions should have one head, not {sorted(heads)}"
    return heads.pop()


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
