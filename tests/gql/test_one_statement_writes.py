"""Audited writes in one round trip (PostgreSQL), and authentication from the token cache.

Statements are counted by the server (``pg_stat_statements``, which sees BEGIN and
COMMIT too), so the counts are what PostgreSQL was sent. A ``createPost`` by a viewer
whose token was read less than ``token_cache_seconds`` ago is one statement: the post
and its audit entry, ``WITH ... INSERT``, without BEGIN or COMMIT. It writes what the
unit of work always writes, fails as it always fails (a duplicate slug is
ALREADY_EXISTS and leaves nothing behind), and a revoked token stops working at once
through this process and within the cache's time through any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import select

from gql.http.app import create_app
from gql.schema.ids import to_global_id
from gql.settings import Settings
from persistence.audit import AuditContext
from persistence.base import utcnow
from persistence.engine import Database
from persistence.models import ApiToken, AuditLog, Post
from persistence.repositories.api_token import ApiTokenRepository
from persistence.unit_of_work import UnitOfWork
from tests.gql.conftest import Person, make_person
from tests.support.graphql import GraphQLClient
from tests.support.postgres import PostgresCluster
from tests.support.statements import ServerStatements

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

CREATE = """
mutation Create($input: CreatePostInput!) {
  createPost(input: $input) {
    __typename
    ... on PostSuccess { post { id slug version } }
    ... on AlreadyExistsError { field }
  }
}
"""
VIEWER = "query { viewer { username } }"
REVOKE = """
mutation Revoke($input: RevokeApiTokenInput!) { revokeApiToken(input: $input) { __typename } }
"""


@pytest.fixture
def settings(database_url: str) -> Settings:
    # No sequencer passes or live reads among the statements counted; a cache time
    # longer than any test, so that no read of the token is due to a slow machine.
    return Settings(
        database_url=database_url, audit_sequencer=False, live_updates=False,
        token_cache_seconds=60,
    )  # fmt: skip


@pytest.fixture
async def statements(
    postgres_cluster: PostgresCluster, database_url: str
) -> AsyncIterator[ServerStatements]:
    connection = await asyncpg.connect(postgres_cluster.url().replace("+asyncpg", ""))
    await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    yield ServerStatements(connection, database_url.rpartition("/")[2])
    await connection.close()


async def create(client: GraphQLClient, author: Person, title: str, **input: Any) -> Any:
    data = await client.execute(CREATE, {"input": {"title": title, **input}}, token=author.token)
    return data["createPost"]


async def test_a_post_by_a_known_token_is_one_statement(
    client: GraphQLClient, app_database: Database, statements: ServerStatements
) -> None:
    alice = await make_person(app_database, "alice")
    await create(client, alice, "First")  # reads the token; later requests need not
    await statements.reset()

    created = await create(client, alice, "Second post")

    counted = await statements.counted()
    print(f"createPost: {dict(counted)}")
    assert created["__typename"] == "PostSuccess"
    assert sum(counted.values()) == 1, counted
    [(statement, _calls)] = counted.items()
    assert statement.startswith("WITH created AS (INSERT INTO posts"), statement
    assert "INSERT INTO audit_log" in statement


async def test_the_one_statement_writes_what_the_unit_of_work_writes(
    client: GraphQLClient, app_database: Database
) -> None:
    alice = await make_person(app_database, "alice")
    created = await create(client, alice, "Written at once", body="Its body.")
    async with app_database.reader() as session:
        post = (await session.scalars(select(Post).where(Post.slug == "written-at-once"))).one()
        about_post = select(AuditLog).where(AuditLog.entity_id == str(post.id))
        [entry] = (await session.scalars(about_post)).all()
    assert created["post"]["version"] == post.version == 1
    assert (post.created_by_id, post.updated_by_id) == (alice.user.id, alice.user.id)
    assert (entry.action, entry.entity_type, entry.actor_id) == ("create", "posts", alice.user.id)
    assert entry.changes == {
        "title": [None, "Written at once"],
        "slug": [None, "written-at-once"],
        "body": [None, "Its body."],
        "status": [None, "draft"],
    }
    assert entry.request_id is not None
    assert entry.ip_address is not None
    assert entry.ip_address != "203.0.113.9"  # sealed


async def test_a_duplicate_in_the_one_statement_is_already_exists_and_writes_nothing(
    client: GraphQLClient, app_database: Database, statements: ServerStatements
) -> None:
    alice = await make_person(app_database, "alice")
    await create(client, alice, "Taken")
    entries_before = await _count(app_database, AuditLog)
    await statements.reset()

    refused = await create(client, alice, "Another", slug="taken")

    assert refused == {"__typename": "AlreadyExistsError", "field": "slug"}
    # pg_stat_statements counts completed statements: not the refused one, and there
    # was nothing else (no BEGIN, no ROLLBACK).
    assert sum((await statements.counted()).values()) == 0
    assert await _count(app_database, Post) == 1
    assert await _count(app_database, AuditLog) == entries_before


async def test_a_known_token_costs_no_statement(
    client: GraphQLClient, app_database: Database, statements: ServerStatements
) -> None:
    alice = await make_person(app_database, "alice")
    await client.execute(VIEWER, token=alice.token)
    await statements.reset()

    for _ in range(5):
        assert await client.execute(VIEWER, token=alice.token) == {"viewer": {"username": "alice"}}

    assert sum((await statements.counted()).values()) == 0


async def test_a_token_revoked_through_this_process_stops_at_once(
    client: GraphQLClient, app_database: Database
) -> None:
    alice = await make_person(app_database, "alice")
    await client.execute(VIEWER, token=alice.token)  # cached
    token_id = await _token_id(app_database, alice)
    await client.execute(REVOKE, {"input": {"id": token_id}}, token=alice.token)

    refused = await client.post(VIEWER, token=alice.token)

    assert refused.status_code == 401


async def test_a_token_revoked_elsewhere_stops_within_the_cache_time(database_url: str) -> None:
    seconds = 0.3
    settings = Settings(
        database_url=database_url, audit_sequencer=False, live_updates=False,
        token_cache_seconds=seconds,
    )  # fmt: skip
    application = create_app(settings)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://testserver"
        ) as http,
    ):
        client = GraphQLClient(http)
        alice = await make_person(application.state.database, "alice")
        await client.execute(VIEWER, token=alice.token)  # cached
        # Another process's unit of work: this one's cache hears nothing of it.
        await _revoke_elsewhere(database_url, alice)
        await asyncio.sleep(seconds)

        refused = await client.post(VIEWER, token=alice.token)

    assert refused.status_code == 401


async def _count(database: Database, model: type) -> int:
    async with database.reader() as session:
        return len((await session.scalars(select(model.id))).all())  # type: ignore[attr-defined]


async def _token_id(database: Database, person: Person) -> str:
    async with database.reader() as session:
        found = select(ApiToken).where(ApiToken.user_id == person.user.id)
        token = (await session.scalars(found)).one()
    return to_global_id("ApiToken", token.id)


async def _revoke_elsewhere(database_url: str, person: Person) -> None:
    other = Database.from_settings(Settings(database_url=database_url))
    try:
        async with UnitOfWork(other, AuditContext(actor_id=person.user.id)) as uow:
            tokens = ApiTokenRepository(uow.session)
            [token] = await tokens.list(user_id=person.user.id)
            await tokens.update(token, {"revoked_at": utcnow()})
    finally:
        await other.dispose()
