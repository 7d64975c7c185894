"""Graceful shutdown of a real `auditql serve` process: on SIGTERM the request in
flight finishes (its mutation fully applied), new connections are refused, and the
process exits 0 within the grace period."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from gql.cli import admin
from gql.schema.ids import to_global_id
from gql.settings import Settings
from persistence import migrations
from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.models import Post
from persistence.repositories.post import PostRepository
from persistence.unit_of_work import UnitOfWork
from tests.conftest import backend_url
from tests.support.audit import audit_entries
from tests.support.server import assert_refused_soon, serving

GRACE_SECONDS = 10
UPDATE = """mutation($id: ID!) { updatePost(input: {id: $id, title: "Finished"}) {
  __typename ... on PostSuccess { post { title version } } } }"""


@asynccontextmanager
async def row_locked(database: Database, post: Post) -> AsyncIterator[None]:
    """Another writer holding what the mutation needs until the block ends: the row
    lock on PostgreSQL, the database's write lock on SQLite (BEGIN IMMEDIATE)."""
    async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
        await PostRepository(uow.session).get(post.id, for_update=True)
        yield


@pytest.fixture
async def database_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'auditql.db'}"
        if backend == "sqlite"
        else backend_url(request, backend, f"shutdown_{tmp_path.name}")
    )
    database = Database.from_settings(Settings(database_url=url))
    await migrations.run(database.engine, "upgrade", "head")
    await database.dispose()
    return url


async def test_sigterm_lets_the_request_in_flight_finish(database_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=database_url)
    await admin.create_user(settings, "ed@example.com", "ed", "", None, superuser=False)
    token = await admin.create_token(settings, "ed@example.com", "test", None)
    database = Database.from_settings(settings)
    async with database.reader() as session:
        ed = (await session.execute(text("SELECT id FROM users"))).scalar_one()
    async with UnitOfWork(database, AuditContext(actor_id=ed)) as uow:
        post = await PostRepository(uow.session).add(Post(title="Started", slug="started"))

    env = {
        "AUDITQL_DATABASE_URL": database_url,
        "AUDITQL_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
        "AUDITQL_DB_LOCK_TIMEOUT_MS": "20000",  # the mutation waits for the lock
    }
    with serving(env, tmp_path / "server.log", "--no-migrate") as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            await http.post("/graphql", json={"query": "{ viewer { id } }"},
                            headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            async with row_locked(database, post):
                in_flight = asyncio.create_task(
                    http.post(
                        "/graphql",
                        json={"query": UPDATE, "variables": {"id": to_global_id("Post", post.id)}},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                )
                await asyncio.sleep(1.0)  # the mutation now waits for the lock
                assert not in_flight.done()
                server.process.send_signal(signal.SIGTERM)
                stopped_at = time.monotonic()
                await assert_refused_soon(server.base)  # new requests are refused
                assert not in_flight.done()
            response = await in_flight
        exit_code = await asyncio.to_thread(server.process.wait, GRACE_SECONDS + 5)

    assert response.status_code == 200
    assert response.json()["data"]["updatePost"] == {
        "__typename": "PostSuccess",
        "post": {"title": "Finished", "version": 2},
    }
    assert exit_code == 0
    assert time.monotonic() - stopped_at < GRACE_SECONDS
    async with database.reader() as session:
        assert (await PostRepository(session).get_or_raise(post.id)).title == "Finished"
    assert [e.action for e in await audit_entries(database, post.id)] == ["create", "update"]
    await database.dispose()
