"""End-to-end fixtures: the real app over HTTP (httpx), on a fresh database per test.

Per-batch read sessions cannot share one test connection, so GraphQL tests commit for
real. Each test gets its own database instead of cleaning up: on PostgreSQL a copy of
a migrated template database, on SQLite a copy of a migrated file.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from starlette.applications import Starlette

from gql.http.app import create_app
from gql.schema.ids import to_global_id
from gql.settings import Settings
from persistence import migrations
from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.models import ApiToken, User
from persistence.repositories.api_token import ApiTokenRepository
from persistence.repositories.user import UserRepository
from persistence.security import new_token
from persistence.unit_of_work import UnitOfWork
from tests.conftest import IN_CI, TEST_KEKS, TEST_SIGNING_KEY, backend_url
from tests.factories.post import create_post
from tests.support.graphql import GraphQLClient
from tests.support.postgres import PostgresCluster
from tests.support.rate_windows import spends_request_budgets, within_one_window
from tests.support.redis import find_redis_server, running_redis
from tests.support.server import Server, serving

_numbers = itertools.count()


@pytest.fixture(scope="session")
async def template_url(request: pytest.FixtureRequest, backend: str) -> str:
    """A migrated database that every test's database is copied from."""
    url = backend_url(request, backend, "auditql_template")
    database = Database.from_settings(Settings(database_url=url))
    await migrations.run(database.engine, "upgrade", "head")
    await database.dispose()
    return url


@pytest.fixture
def database_url(request: pytest.FixtureRequest, backend: str, template_url: str) -> str:
    name = f"auditql_e2e_{next(_numbers)}"
    if backend == "sqlite":
        source = Path(str(make_url(template_url).database))
        target = source.with_name(f"{name}.db")
        shutil.copyfile(source, target)
        return f"sqlite+aiosqlite:///{target}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    cluster.psql(f'CREATE DATABASE "{name}" TEMPLATE auditql_template')
    return cluster.url(name)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    """The application, with its lifespan running (which builds its Database)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def app_database(app: Starlette) -> Database:
    """The application's own Database, to arrange data and check what was written."""
    database: Database = app.state.database
    return database


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 51234))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield GraphQLClient(http)


@dataclass
class Person:
    user: User
    token: str

    @property
    def id(self) -> str:
        return to_global_id("User", self.user.id)


async def make_person(database: Database, name: str, *, superuser: bool = False) -> Person:
    token = new_token()
    async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
        user = await UserRepository(uow.session).add(
            User(email=f"{name}@example.com", username=name, full_name=name.title(),
                 is_superuser=superuser)
        )  # fmt: skip
        await ApiTokenRepository(uow.session).add(
            ApiToken(user_id=user.id, name="test", token_hash=token.hash, prefix=token.prefix)
        )
    return Person(user=user, token=token.secret)


@pytest.fixture
async def admin(app_database: Database) -> Person:
    return await make_person(app_database, "admin", superuser=True)


@pytest.fixture
async def alice(app_database: Database) -> Person:
    return await make_person(app_database, "alice")


@pytest.fixture
async def bob(app_database: Database) -> Person:
    return await make_person(app_database, "bob")


@pytest.fixture
async def served_database(database_url: str) -> AsyncIterator[Database]:
    """The database a ``live_server`` serves, to arrange data and read what was written."""
    database = Database.from_settings(Settings(database_url=database_url))
    yield database
    await database.dispose()


NO_RATE_LIMITS = {
    "AUDITQL_RATE_LIMIT_PER_TOKEN": "",
    "AUDITQL_RATE_LIMIT_PER_ADDRESS": "",
    "AUDITQL_SIGN_IN_FAILURE_LIMIT": "",
}

LiveServer = Callable[..., contextlib.AbstractContextManager[Server]]


@dataclass
class Scene:
    """The live server's database, an author with a token, and one of her posts (for
    tests that hold locks on it while the server works)."""

    database: Database
    token: str
    post_id: str
    post_key: Any

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
async def scene(served_database: Database) -> Scene:
    alice = await make_person(served_database, "alice")
    async with UnitOfWork(served_database, AuditContext(actor_id=alice.user.id)) as uow:
        post = await create_post(uow, title="Steady")
    return Scene(served_database, alice.token, to_global_id("Post", post.id), post.id)


@pytest.fixture
async def other_client(database_url: str) -> AsyncIterator[AsyncConnection]:
    """A connection of another client (not the server's ``auditql`` pool), to hold locks
    and to look at ``pg_stat_activity``."""
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        yield connection
    await engine.dispose()


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> LiveServer:
    """Starts ``auditql serve`` on this test's database, in production mode with JSON
    logs and no rate limits unless ``env`` says otherwise; its log is ``tmp_path / "server.log"``.
    A server with request budgets is handed over with 15 s or more left in the clock's
    minute, for the test to spend them within one window (:mod:`tests.support.rate_windows`).

        with live_server(AUDITQL_RATE_LIMIT_PER_TOKEN="5/minute") as server: ...
    """

    @contextlib.contextmanager
    def start(**env: str) -> Iterator[Server]:
        with serving(
            served_env(database_url, **env), tmp_path / "server.log", "--no-migrate"
        ) as server:
            if spends_request_budgets(env):
                within_one_window()
            yield server

    return start


def served_env(database_url: str, **env: str) -> dict[str, str]:
    """What a served test's ``auditql serve`` runs with: production mode, JSON logs and
    no rate limits unless ``env`` says otherwise."""
    return {
        "AUDITQL_DATABASE_URL": database_url,
        "AUDITQL_ENVIRONMENT": "production",
        "AUDITQL_ALLOW_SQLITE_IN_PRODUCTION": "true",
        "AUDITQL_AUDIT_KEKS": TEST_KEKS,
        "AUDITQL_AUDIT_SIGNING_KEY": TEST_SIGNING_KEY,
        "AUDITQL_LOG_FORMAT": "json",
        # Tests send requests faster than any client should; those about rate limits
        # set the budgets they test.
        **NO_RATE_LIMITS,
        **env,
    }


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = find_redis_server()
    if binary is None:
        if IN_CI:
            pytest.fail("redis-server is required in CI (CI=true)")
        pytest.skip("redis-server not found (it is required in CI)")
    with running_redis(binary, tmp_path_factory.mktemp("redis")) as url:
        yield url
