"""auditql behind PgBouncer in transaction pooling mode (``AUDITQL_DB_PGBOUNCER``): a real
PgBouncer 1.18 (tests/support/pgbouncer.py) whose clients share two server connections.

- Nothing rides on a server session: PgBouncer refuses a direct connection's start-up
  settings; behind it every transaction carries the statement and lock timeouts (and
  read-only, on the read pool), and leaves nothing in the session it borrowed.
- No prepared statement leaks onto a shared server connection or goes missing from one:
  many clients' different statements, no error, no wrong answer, and
  ``pg_prepared_statements`` empty on every server connection.
- The read pool cannot write.
- The API, through a live server: reads with authors and tags, writes with their audit
  entries, races with exactly one winner, and ``TIMEOUT`` from the lock and statement
  timeouts, each within its bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.models import Post
from persistence.settings import DatabaseSettings
from persistence.unit_of_work import UnitOfWork
from tests.conftest import IN_CI
from tests.factories.post import create_post
from tests.gql.conftest import LiveServer, Scene, make_person
from tests.gql.factories import create_tag, mutate, succeed
from tests.gql.test_database_faults import (
    CREATE,
    NO_LIMITS,
    POSTS,
    ROW_LOCK,
    UPDATE,
    VIEWER,
    assert_ok,
    assert_refused,
    holding,
    past_statement_timeout,
    postgresql_stopped,
    send,
    server_log,
)
from tests.support.audit import audit_entries
from tests.support.graphql import GraphQLClient
from tests.support.pgbouncer import PgBouncer, find_pgbouncer, running_pgbouncer
from tests.support.postgres import PostgresCluster
from tests.support.server import Server

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

SHOWN = ("statement_timeout", "lock_timeout", "client_connection_check_interval",
         "transaction_read_only")  # fmt: skip
SHOW = "SELECT " + ", ".join(f"current_setting('{name}')" for name in SHOWN)


@pytest.fixture(scope="session")
def pgbouncer(postgres_cluster: PostgresCluster) -> Iterator[PgBouncer]:
    binary = find_pgbouncer()
    if binary is None:
        if IN_CI:
            pytest.fail("pgbouncer is required in CI (CI=true)")
        pytest.skip("pgbouncer not found (it is required in CI)")
    with running_pgbouncer(binary, postgres_cluster) as bouncer:
        yield bouncer


@pytest.fixture
def bounced_url(pgbouncer: PgBouncer, database_url: str) -> str:
    """This test's database, through PgBouncer."""
    return pgbouncer.url(database_url)


@pytest.fixture
async def bounced(bounced_url: str) -> AsyncIterator[Database]:
    """The database through PgBouncer, opened as the service opens it in that mode."""
    database = Database.from_settings(DatabaseSettings(database_url=bounced_url, db_pgbouncer=True))
    yield database
    await database.dispose()


@pytest.fixture
def bounced_server(live_server: LiveServer, bounced_url: str) -> LiveServer:
    """``live_server``, behind PgBouncer."""

    def start(**env: str) -> contextlib.AbstractContextManager[Server]:
        return live_server(AUDITQL_DATABASE_URL=bounced_url, AUDITQL_DB_PGBOUNCER="true", **env)

    return start


async def on_every_server_connection(pgbouncer: PgBouncer, url: str, query: str) -> list[Any]:
    """``query``'s row on each of the database's server connections: as many clients as
    its pool has server connections each hold one in a transaction while asking."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    rows: dict[int, tuple[Any, ...]] = {}
    clients = [await asyncpg.connect(dsn, statement_cache_size=0)]
    try:
        while len(clients) < pgbouncer.pool_size:
            clients.append(await asyncpg.connect(dsn, statement_cache_size=0))
        for client in clients:
            await client.execute("BEGIN")
        for client in clients:
            row = await client.fetchrow(f"SELECT pg_backend_pid(), * FROM ({query}) AS q")
            assert row is not None
            rows[row[0]] = tuple(row)[1:]
        for client in clients:
            await client.execute("ROLLBACK")
    finally:
        for client in clients:
            await client.close()
    assert len(rows) == pgbouncer.pool_size  # every one of them asked
    return list(rows.values())


# -- sessions ----------------------------------------------------------------------------


async def test_pgbouncer_refuses_the_settings_a_direct_connection_sends(bounced_url: str) -> None:
    database = Database.from_settings(DatabaseSettings(database_url=bounced_url))
    try:
        with pytest.raises(DBAPIError, match="unsupported startup parameter"):
            async with database.reader() as session:
                await session.execute(text("SELECT 1"))
    finally:
        await database.dispose()


async def test_each_transaction_carries_its_bounds_and_leaves_none_in_the_session(
    bounced: Database, bounced_url: str, pgbouncer: PgBouncer
) -> None:
    async with UnitOfWork(bounced, AuditContext(actor_id=None)) as uow:
        written = tuple((await uow.session.execute(text(SHOW))).one())
    async with bounced.reader() as session:
        read = tuple((await session.execute(text(SHOW))).one())
        name = await session.scalar(text("SELECT current_setting('application_name')"))

    assert written == ("4s", "3s", "1s", "off")
    assert read == ("4s", "3s", "1s", "on")
    assert name == "auditql"  # a start-up parameter PgBouncer sets on the lent connection
    # The next client of those server connections finds PostgreSQL's defaults.
    left = await on_every_server_connection(pgbouncer, bounced_url, SHOW)
    assert set(left) == {("0", "0", "0", "off")}


async def test_the_read_pool_cannot_write(bounced: Database) -> None:
    async with UnitOfWork(bounced, AuditContext(actor_id=None)) as uow:
        await create_post(uow, title="Kept")
    for statement in ("UPDATE posts SET title = 'Changed'", "CREATE TABLE intruders (id int)",
                      "DELETE FROM posts"):  # fmt: skip
        async with bounced.reader() as session:
            with pytest.raises(DBAPIError) as refused:
                await session.execute(text(statement))
        assert refused.value.orig.sqlstate == "25006", statement  # type: ignore[union-attr]
    async with bounced.reader() as session:
        assert (await session.scalars(select(Post.title))).all() == ["Kept"]


async def test_no_prepared_statement_leaks_or_goes_missing(
    bounced: Database, bounced_url: str, pgbouncer: PgBouncer
) -> None:
    """Twelve tasks at once, on as many client connections per pool, take turns on the
    two server connections; each sends statements that every task sends (an ORM query, a
    unit of work's INSERTs) and statements of its own, with parameters of different
    types: a statement run on the wrong server connection would be missing there, or
    another's, and answer wrong."""

    async def client(n: int) -> None:
        for i in range(10):
            async with bounced.reader() as session:
                own = text(f"SELECT CAST(:number AS integer) + {n}, :word || '{i}'")
                answer = (await session.execute(own, {"number": i, "word": f"t{n}-"})).one()
                assert tuple(answer) == (i + n, f"t{n}-{i}")
                await session.scalars(select(Post).where(Post.title == f"Task {n}").limit(3))
            async with UnitOfWork(bounced, AuditContext(actor_id=None)) as uow:
                await create_post(uow, title=f"Task {n}")

    await asyncio.gather(*(client(n) for n in range(12)))

    async with bounced.reader() as session:
        assert await session.scalar(select(func.count()).select_from(Post)) == 12 * 10
    name = make_url(bounced_url).database
    clients = [c for c in pgbouncer.show("CLIENTS") if c["database"] == name]
    assert len(clients) > 2 * pgbouncer.pool_size  # many clients, really sharing
    named = await on_every_server_connection(
        pgbouncer, bounced_url, "SELECT count(*) FROM pg_prepared_statements"
    )
    assert named == [(0,)] * pgbouncer.pool_size


# -- the API through a live server --------------------------------------------------------

LISTING = """{ posts(first: 50) { totalCount edges { node {
  title version createdBy { username } updatedBy { username } tags { name } } } } }"""


async def test_reads_and_writes_with_their_audit_entries(
    bounced_server: LiveServer, served_database: Database
) -> None:
    admin = await make_person(served_database, "admin", superuser=True)
    alice = await make_person(served_database, "alice")
    with bounced_server() as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            client = GraphQLClient(http)
            tags = [await create_tag(client, admin, name=name) for name in ("sql", "pooling")]
            posts = [
                await succeed(client, alice, "createPost", title=f"Pooled {n}",
                              tagIds=[tag["id"] for tag in tags])
                for n in range(3)
            ]  # fmt: skip
            updated = await succeed(client, alice, "updatePost", id=posts[0]["id"],
                                    title="Pooled again", expectedVersion=1)  # fmt: skip
            stale = await mutate(client, alice, "updatePost", id=posts[0]["id"],
                                 title="Stale", expectedVersion=1)  # fmt: skip
            listing = (await client.execute(LISTING, token=alice.token))["posts"]

    assert (updated["title"], updated["version"]) == ("Pooled again", 2)
    assert (stale["__typename"], stale["currentVersion"]) == ("ConflictError", 2)
    assert listing["totalCount"] == 3
    assert sorted((e["node"]["title"], e["node"]["version"]) for e in listing["edges"]) == [
        ("Pooled 1", 1), ("Pooled 2", 1), ("Pooled again", 2)
    ]  # fmt: skip
    for edge in listing["edges"]:
        node = edge["node"]
        assert node["createdBy"] == node["updatedBy"] == {"username": "alice"}
        assert sorted(tag["name"] for tag in node["tags"]) == ["pooling", "sql"]
    entries = [(e.entity_type, e.action, e.actor_id) for e in await audit_entries(served_database)]
    assert entries.count(("tags", "create", admin.user.id)) == 2
    assert entries.count(("posts", "create", alice.user.id)) == 3
    assert entries.count(("posts", "update", alice.user.id)) == 1


RACERS = 20


async def race(server_base: str, send_one: Callable[[GraphQLClient, int], Any]) -> list[Any]:
    limits = httpx.Limits(max_connections=RACERS, max_keepalive_connections=RACERS)
    async with httpx.AsyncClient(base_url=server_base, limits=limits, timeout=30) as http:
        client = GraphQLClient(http)
        return list(await asyncio.gather(*(send_one(client, n) for n in range(RACERS))))


async def test_races_have_exactly_one_winner(
    bounced_server: LiveServer, served_database: Database
) -> None:
    admin = await make_person(served_database, "admin", superuser=True)
    alice = await make_person(served_database, "alice")
    with bounced_server() as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            post = await succeed(GraphQLClient(http), alice, "createPost", title="Race")
        updates = await race(server.base, lambda client, n: mutate(
            client, alice, "updatePost", id=post["id"], title=f"Racer {n}", expectedVersion=1
        ))  # fmt: skip
        tags = await race(server.base, lambda client, _: mutate(
            client, admin, "createTag", name="contested"
        ))  # fmt: skip
        slugs = await race(server.base, lambda client, n: mutate(
            client, alice, "createPost", title=f"Racer {n}", slug="contested"
        ))  # fmt: skip

    for outcomes, success, loser in [(updates, "PostSuccess", "ConflictError"),
                                     (tags, "TagSuccess", "AlreadyExistsError"),
                                     (slugs, "PostSuccess", "AlreadyExistsError")]:  # fmt: skip
        names = sorted(o["__typename"] for o in outcomes)
        assert names == sorted([success] + [loser] * (RACERS - 1)), names
    assert {o.get("field") for o in tags} == {None, "name"}
    assert {o.get("field") for o in slugs} == {None, "slug"}
    assert {o["currentVersion"] for o in updates if "currentVersion" in o} == {2}
    entries = [(e.entity_type, e.action) for e in await audit_entries(served_database)]
    assert entries.count(("posts", "update")) == 1
    assert entries.count(("tags", "create")) == 1
    assert entries.count(("posts", "create")) == 2  # "Race", and one racer


async def test_a_locked_row_times_out_within_the_lock_budget(
    bounced_server: LiveServer, scene: Scene, other_client: AsyncConnection, tmp_path: Path
) -> None:
    """One update, then five at once, on a row another client (not through PgBouncer)
    holds. The one is ended on the server by lock_timeout (1 s), within its lock budget
    (1.5 s). Of the five, three queue in PgBouncer for one of its two server connections,
    and that wait is spent from their budgets too; a request's read (its token's) may
    also queue there behind units of work holding both, for at most one budget more.
    Nothing of them is written."""
    variables = {"id": scene.post_id, "title": "Blocked"}
    with bounced_server(**NO_LIMITS, AUDITQL_DB_LOCK_TIMEOUT_MS="1000") as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
            assert_ok((await send(http, POSTS))[0])
            async with holding(other_client, ROW_LOCK, id=scene.post_key):
                one, one_seconds = await send(http, UPDATE, variables, scene.bearer)
                many = await asyncio.gather(
                    *(send(http, UPDATE, variables, scene.bearer) for _ in range(5))
                )
            released, _ = await send(http, UPDATE, {**variables, "title": "Free"}, scene.bearer)
    print("seconds:", round(one_seconds, 2), sorted(round(s, 2) for _, s in many))

    assert one_seconds < 1.5 + 0.5  # the budget, and a little
    [cause] = [line["message"] for line in server_log(tmp_path) if line["level"] == "WARNING"
               and line.get("request_id") == one.headers["x-request-id"]]  # fmt: skip
    assert "SQLSTATE 55P03" in cause  # lock_timeout, on the server: not the budget's deadline
    for response, _ in [(one, one_seconds), *many]:
        assert_refused(response, "TIMEOUT", "1")
    assert max(seconds for _, seconds in many) < 2 * 1.5 + 1
    assert assert_ok(released)["data"]["updatePost"]["post"] == {"title": "Free", "version": 2}
    actions = [e.action for e in await audit_entries(scene.database, scene.post_key)]
    assert actions == ["create", "update"]


async def test_a_statement_past_statement_timeout_is_cancelled_and_answered_timeout(
    bounced_server: LiveServer, scene: Scene, other_client: AsyncConnection
) -> None:
    blocked, seconds, still_waiting, unblocked = await past_statement_timeout(
        bounced_server, other_client
    )

    assert seconds < 2
    assert_refused(blocked, "TIMEOUT", "1")
    assert still_waiting == []  # cancelled on the server, not merely abandoned
    assert_ok(unblocked)


async def test_a_full_pool_is_refused_by_pgbouncer_before_the_client_deadline(
    pgbouncer: PgBouncer, postgres_cluster: PostgresCluster, database_url: str,
    live_server: LiveServer,
) -> None:  # fmt: skip
    """Behind a PgBouncer whose query_wait_timeout (1 s) is below the service's command
    timeout (5 s), a request that finds both server connections held by other clients is
    refused by PgBouncer: SERVICE_UNAVAILABLE within seconds, and the database is not
    taken for a silent one, so the request after the pool frees is served at once."""
    with running_pgbouncer(pgbouncer.binary, postgres_cluster, query_wait_timeout=1) as impatient:
        url = impatient.url(database_url)
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        env = {"AUDITQL_DATABASE_URL": url, "AUDITQL_DB_PGBOUNCER": "true", **NO_LIMITS}
        with live_server(**env) as server:
            async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
                assert_ok((await send(http, POSTS))[0])
                holders = [await asyncpg.connect(dsn) for _ in range(impatient.pool_size)]
                for holder in holders:
                    await holder.execute("BEGIN")
                refused, seconds = await send(http, POSTS)
                for holder in holders:
                    await holder.close()
                served, _ = await send(http, POSTS)
    print(f"refused by PgBouncer after {seconds:.3f} s")

    assert seconds < 3
    assert_refused(refused, "SERVICE_UNAVAILABLE", "2")
    assert_ok(served)


async def test_postgresql_down_behind_pgbouncer_is_503_and_recovery_needs_no_restart(
    bounced_server: LiveServer, scene: Scene, postgres_cluster: PostgresCluster
) -> None:
    """PgBouncer stays up and answers for the server it cannot reach: its refusals are
    a database fault (503 SERVICE_UNAVAILABLE with Retry-After), not a bug (500)."""
    with bounced_server(**NO_LIMITS) as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
            assert_ok((await send(http, POSTS))[0])
            with postgresql_stopped(postgres_cluster):
                refused = await asyncio.gather(
                    send(http, POSTS), send(http, VIEWER, headers=scene.bearer),
                    send(http, CREATE, {"title": "Down"}, scene.bearer),
                )  # fmt: skip
            restarted = time.monotonic()
            while (await send(http, POSTS))[0].status_code != 200:
                assert time.monotonic() - restarted < 30, "no recovery within 30 s"
                await asyncio.sleep(0.2)
            recovered = time.monotonic() - restarted
            after = [await send(http, POSTS), await send(http, VIEWER, headers=scene.bearer)]
    for response, seconds in refused:
        assert_refused(response, "SERVICE_UNAVAILABLE", "2")
        assert seconds < 10
    print(f"PostgreSQL down behind PgBouncer: answered in {max(s for _, s in refused):.2f} s;"
          f" served again {recovered:.2f} s after it started")  # fmt: skip
    for response, _ in after:
        assert_ok(response)
