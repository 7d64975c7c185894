"""Migrations: they build the schema the models describe, and they reverse cleanly."""

from __future__ import annotations

import warnings

import pytest
from alembic import command
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence import migrations
from persistence.engine import create_engine
from persistence.settings import DatabaseSettings
from tests.conftest import backend_url

# Every FK column that is not the leading column of some index.
UNINDEXED_FOREIGN_KEYS = """
SELECT c.conrelid::regclass || '.' || a.attname
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
WHERE c.contype = 'f'
  AND NOT EXISTS (
    SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1]
  )
"""

# Every FK column whose type differs from the type of the column it references.
MISTYPED_FOREIGN_KEYS = """
SELECT c.conrelid::regclass || '.' || a.attname
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
JOIN pg_attribute r ON r.attrelid = c.confrelid
  AND r.attnum = c.confkey[array_position(c.conkey, a.attnum)]
WHERE c.contype = 'f' AND a.atttypid <> r.atttypid
"""


def _check(connection: Connection) -> None:
    with warnings.catch_warnings():
        # SQLite cannot reflect expression indexes, so alembic skips comparing them
        # (and says so); PostgreSQL compares them.
        warnings.filterwarnings("ignore", message=".*expression-based index")
        command.check(migrations.config(connection))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


async def test_upgrade_check_downgrade_upgrade(
    request: pytest.FixtureRequest, backend: str
) -> None:
    engine = create_engine(DatabaseSettings(database_url=backend_url(request, backend, "mig")))
    try:
        await migrations.run(engine, "upgrade", "head")
        async with engine.connect() as connection:
            await connection.run_sync(_check)  # raises when models and database differ
            assert await connection.run_sync(_tables) == {
                "users", "api_tokens", "posts", "comments", "tags", "post_tags",
                "feature_flags", "flag_overrides", "audit_log",
            }  # fmt: skip

        await migrations.run(engine, "downgrade", "base")
        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) == set()

        await migrations.run(engine, "upgrade", "head")
        async with engine.connect() as connection:
            await connection.run_sync(_check)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.parametrize("query", [UNINDEXED_FOREIGN_KEYS, MISTYPED_FOREIGN_KEYS])
async def test_postgres_catalog_has_no_unindexed_or_mistyped_foreign_key(
    migrated_engine: AsyncEngine, query: str
) -> None:
    async with migrated_engine.connect() as connection:
        offenders = (await connection.execute(text(query))).scalars().all()
    assert offenders == []
