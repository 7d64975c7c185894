"""Migrations: they build the schema the models describe, and they reverse cleanly."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from alembic import command
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Column, Connection, ForeignKey, Index, String, Table, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence import migrations
from persistence.base import Base
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
    """The tables, without a partitioned table's partitions (the audit log's months)."""
    tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
    if connection.dialect.name == "postgresql":
        partitions = text("SELECT relname FROM pg_class WHERE relispartition")
        tables -= set(connection.execute(partitions).scalars())
    return tables


async def test_upgrade_check_downgrade_upgrade(
    request: pytest.FixtureRequest, backend: str
) -> None:
    engine = create_engine(DatabaseSettings(database_url=backend_url(request, backend, "mig")))
    try:
        await migrations.run(engine, "upgrade", "head")
        async with engine.connect() as connection:
            await connection.run_sync(_check)  # raises when models and database differ
            assert await connection.run_sync(_tables) == set(Base.metadata.tables)

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


@pytest.fixture
def probe_table() -> Iterator[Table]:
    """A table the models gain for one test, as a new model would add it."""
    types: Any = Base.registry.type_annotation_map
    table = Table(
        "lint_probes", Base.metadata,
        Column("id", types[UUID], primary_key=True),
        Column("created_at", types[datetime]),
        Column("note", String(200)),
        Column("data", types[dict[str, Any]]),
        Column("created_by_id", ForeignKey("users.id", ondelete="SET NULL")),
        Index(None, "created_by_id", "note", unique=True),
    )  # fmt: skip
    yield table
    Base.metadata.remove(table)


def ruff(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The linters CI runs, on one file."""
    return subprocess.run([sys.executable, "-m", "ruff", *args], capture_output=True, text=True)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_generated_migration_passes_the_linters_as_it_comes(
    request: pytest.FixtureRequest, backend: str, probe_table: Table
) -> None:
    engine = create_engine(DatabaseSettings(database_url=backend_url(request, backend, "gen")))
    path: Path | None = None

    def generate(connection: Connection) -> Path:
        script = command.revision(
            migrations.config(connection), message="lint probe", autogenerate=True
        )
        assert isinstance(script, Script)
        return Path(script.path)

    try:
        await migrations.run(engine, "upgrade", "head")
        async with engine.connect() as connection:
            path = await connection.run_sync(generate)
        source = path.read_text()
        checked = await asyncio.to_thread(ruff, "check", path)
        formatted = await asyncio.to_thread(ruff, "format", "--check", "--diff", path)
    finally:
        if path is not None:
            path.unlink()
        await engine.dispose()

    assert 'op.create_table(\n        "lint_probes"' in source
    assert "postgresql.JSONB" in source  # the dialect import is there, sorted
    assert (checked.returncode, checked.stdout) == (0, "All checks passed!\n")
    assert formatted.returncode == 0, formatted.stdout


def test_the_head_is_the_one_alembic_finds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``migrations.head`` reads the files' declarations itself (serving never imports
    Alembic): here, of the project's migrations, then of a branch and its merge as
    ``alembic revision`` and ``alembic merge`` write them."""
    project_head = ScriptDirectory.from_config(migrations.config()).get_current_head()
    assert migrations.head() == project_head

    for migration in migrations.VERSIONS.glob("*.py"):
        shutil.copy(migration, tmp_path)
    config = migrations.config()
    config.set_main_option("version_locations", str(tmp_path))
    command.revision(config, message="one branch", head=project_head)
    command.revision(config, message="another branch", head=project_head, splice=True)
    command.merge(config, "heads", message="merge")
    monkeypatch.setattr(migrations, "VERSIONS", tmp_path)
    migrations.head.cache_clear()
    try:
        assert migrations.head() == ScriptDirectory.from_config(config).get_current_head()
        assert migrations.head() != project_head
    finally:
        migrations.head.cache_clear()
