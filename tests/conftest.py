"""Databases for the tests: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from a throwaway cluster that the session starts from the local
server binaries. Without them the PostgreSQL tests are skipped, except in CI
(``CI=true``), where a missing or broken PostgreSQL fails the run.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence import migrations
from persistence.engine import Database, create_engine
from persistence.settings import DatabaseSettings
from tests.support.database import database_in_transaction
from tests.support.postgres import PostgresCluster, find_bindir

BACKENDS = ("sqlite", "postgresql")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TEST_KEKS = "test:" + base64.b64encode(bytes(range(32))).decode()
"""The KEK every test's databases and processes seal personal audit values under."""
# In the environment, so that settings made anywhere (and served and CLI processes,
# which inherit it) read what others sealed, and no test writes a development key file.
os.environ["AUDITQL_AUDIT_KEKS"] = TEST_KEKS
TEST_SIGNING_KEY = "ed25519:test:" + base64.b64encode(bytes(range(32, 64))).decode()
"""The key every test's audit checkpoints are signed with, in the environment likewise."""
os.environ["AUDITQL_AUDIT_SIGNING_KEY"] = TEST_SIGNING_KEY


@pytest.fixture(scope="session")
def postgres_bindir() -> Path:
    """The PostgreSQL server binaries: a test that needs them fails without them in CI
    and is skipped elsewhere."""
    bindir = find_bindir()
    if bindir is None:
        if IN_CI:
            pytest.fail("PostgreSQL server binaries are required in CI (CI=true)")
        pytest.skip("PostgreSQL server binaries not found (they are required in CI)")
    return bindir


@pytest.fixture(scope="session")
def postgres_cluster(postgres_bindir: Path) -> Iterator[PostgresCluster]:
    cluster = PostgresCluster(postgres_bindir).init().start()
    yield cluster
    cluster.destroy()


def backend_url(request: pytest.FixtureRequest, backend: str, name: str) -> str:
    """A URL of a fresh, empty database called ``name`` on ``backend``."""
    if backend == "sqlite":
        directory: Path = request.getfixturevalue("tmp_path_factory").mktemp("sqlite")
        return f"sqlite+aiosqlite:///{directory / f'{name}.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    cluster.psql(f'CREATE DATABASE "{name}"')
    return cluster.url(name)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
async def migrated_engine(
    request: pytest.FixtureRequest, backend: str
) -> AsyncIterator[AsyncEngine]:
    """An engine on a database migrated to head with Alembic (so migrations are tested)."""
    url = backend_url(request, backend, "auditql_test")
    engine = create_engine(DatabaseSettings(database_url=url))
    await migrations.run(engine, "upgrade", "head")
    yield engine
    await engine.dispose()


@pytest.fixture
async def database(migrated_engine: AsyncEngine) -> AsyncIterator[Database]:
    """A Database whose every session runs inside one transaction, rolled back after the
    test: units of work commit to savepoints, and nothing outlives the test."""
    async with migrated_engine.connect() as connection:
        transaction = await connection.begin()
        yield database_in_transaction(connection)
        await transaction.rollback()
