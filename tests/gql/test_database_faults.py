"""Database faults, through a real ``auditql serve`` on the real PostgreSQL cluster.

- PostgreSQL stopped: every request (anonymous, authenticated, a mutation) is answered
  within seconds with 503, ``Retry-After`` and ``SERVICE_UNAVAILABLE``, and nothing of
  the cause; ``/ready`` says 503 and ``/health`` 200. Once PostgreSQL is back, requests
  succeed again within seconds, without a restart and without one 500 from a pooled
  connection that died meanwhile. The server logs one warning per fault, no traceback.
  A restart between two requests costs no request at all.
- A row locked by another transaction: ``updatePost`` fails after ``lock_timeout`` with
  ``TIMEOUT`` (503, ``Retry-After``) and writes nothing; ten of them waiting on a pool of
  two leave the pool whole: reads and another write succeed right after.
- A statement past ``statement_timeout`` is cancelled on the server and answered
  ``TIMEOUT``; a pool with no free connection within ``db_pool_timeout`` is answered
  ``SERVICE_UNAVAILABLE``.
- PostgreSQL frozen (SIGSTOP: open connections, no answers, as in a partition): every
  request is answered 503 ``SERVICE_UNAVAILABLE`` within the client-side deadline, and
  at once while it stays frozen; thawed, the pool recovers within seconds.
- Many updates waiting on one locked row: each waits at most its lock budget, never a
  multiple of ``lock_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.gql.conftest import LiveServer, Scene
from tests.support.audit import audit_entries
from tests.support.postgres import PostgresCluster

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

# Rate limits off: the tests poll and fan out on purpose.
NO_LIMITS = {"AUDITQL_RATE_LIMIT_PER_ADDRESS": "", "AUDITQL_RATE_LIMIT_PER_TOKEN": ""}
# Every authenticated request reads its token: with the token cache, one that needs
# nothing else from the database is answered while the database is away.
UNCACHED = {"AUDITQL_TOKEN_CACHE_SECONDS": "0"}
POSTS = "{ posts(first: 5) { edges { node { title } } } }"
ROW_LOCK = "SELECT id FROM posts WHERE id = :id FOR UPDATE"
VIEWER = "{ viewer { username } }"
POST = "query($id: ID!) { node(id: $id) { ... on Post { title version } } }"
UPDATE = """mutation($id: ID!, $title: String!) { updatePost(input: {id: $id, title: $title}) {
  __typename ... on PostSuccess { post { title version } } } }"""
CREATE = """mutation($title: String!) { createPost(input: {title: $title}) { __typename } }"""
LOGIN = """mutation { login(input: {email: "alice@example.com", password: "x"}) {
  __typename } }"""
# What must never reach a client: the cause's text, SQL, drivers, addresses, SQLSTATEs.
SECRETS = ("SELECT", "UPDATE ", "posts.", "SQL", "asyncpg", "sqlalchemy", "Errno", "refused",
           "127.0.0.1", "lock timeout", "statement timeout", "canceling", "55P03", "57014",
           "Traceback", ".py", "Error:", "pool")  # fmt: skip


async def send(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[httpx.Response, float]:  # fmt: skip
    """The response and how many seconds it took."""
    started = time.monotonic()
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers or {}
    )
    return response, time.monotonic() - started


def assert_refused(response: httpx.Response, code: str, retry_after: str) -> None:
    """A clean 503: one error with the code and the request id, and no cause in sight."""
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == retry_after
    [error] = response.json()["errors"]
    assert error["extensions"] == {
        "code": code, "retryAfter": int(retry_after), "requestId": response.headers["x-request-id"]
    }  # fmt: skip
    leaked = [secret for secret in SECRETS if secret in response.text]
    assert not leaked, (leaked, response.text)


def assert_ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body


@contextlib.contextmanager
def postgresql_stopped(cluster: PostgresCluster) -> Iterator[None]:
    """PostgreSQL down for the block, and up again after it, whatever happens."""
    cluster.stop()
    try:
        yield
    finally:
        cluster.start()


@contextlib.asynccontextmanager
async def holding(connection: AsyncConnection, sql: str, **params: Any) -> AsyncIterator[None]:
    """``sql`` run in a transaction that keeps its locks until the block ends."""
    async with connection.begin():
        await connection.execute(text(sql), params)
        yield


async def waiting_on_locks(connection: AsyncConnection) -> list[str]:
    """The server's queries that wait for a lock right now."""
    rows = await connection.execute(text(
        "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name = 'auditql' AND wait_event_type = 'Lock'"
    ))  # fmt: skip
    return list(rows.scalars())


@contextlib.asynccontextmanager
async def blocked_update(
    http: httpx.AsyncClient, scene: Scene, other_client: AsyncConnection, title: str
) -> AsyncIterator[asyncio.Task[tuple[httpx.Response, float]]]:
    """An ``updatePost`` of the scene's post, sent once ``other_client`` locked its row
    and yielded once the server's UPDATE waits for that lock (within 10 s); the lock is
    released when the block ends."""
    variables = {"id": scene.post_id, "title": title}
    async with holding(other_client, ROW_LOCK, id=scene.post_key):
        update = asyncio.create_task(send(http, UPDATE, variables, scene.bearer))
        async with other_client.engine.connect() as watcher:
            deadline = time.monotonic() + 10
            while not await waiting_on_locks(watcher):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        yield update


async def pool_in_use(http: httpx.AsyncClient) -> float:
    """The server's ``auditql_db_pool_connections_in_use`` gauge."""
    families = text_string_to_metric_families((await http.get("/metrics")).text)
    [sample] = [s for f in families if f.name == "auditql_db_pool_connections_in_use"
                for s in f.samples]  # fmt: skip
    return sample.value


def server_log(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "server.log").read_text().splitlines()]


async def test_postgresql_down_is_503_within_seconds_and_recovery_needs_no_restart(
    live_server: LiveServer, scene: Scene, postgres_cluster: PostgresCluster, tmp_path: Path
) -> None:
    with live_server(**NO_LIMITS, **UNCACHED) as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
            assert_ok((await send(http, VIEWER, headers=scene.bearer))[0])  # token's use noted
            # A warm pool: these connections die with the server and must be replaced.
            for response, _ in await asyncio.gather(*(send(http, POSTS) for _ in range(8))):
                assert_ok(response)

            refused: list[tuple[str, httpx.Response, float]] = []
            with postgresql_stopped(postgres_cluster):
                for name, query, variables, headers in [
                    ("anonymous query", POSTS, None, {}),
                    ("authenticated query", VIEWER, None, scene.bearer),
                    ("anonymous mutation", LOGIN, None, {}),
                    ("authenticated mutation", CREATE, {"title": "Lost"}, scene.bearer),
                    ("anonymous query again", POSTS, None, {}),
                ]:  # fmt: skip
                    response, seconds = await send(http, query, variables, headers)
                    refused.append((name, response, seconds))
                ready = await http.get("/ready")
                health = await http.get("/health")

            started, statuses = time.monotonic(), list[int]()
            while not statuses or statuses[-1] != 200:
                assert time.monotonic() - started < 15, statuses
                response, _ = await send(http, POSTS)
                statuses.append(response.status_code)
                await asyncio.sleep(0.1 if response.status_code != 200 else 0)
            recovered = time.monotonic() - started
            after = await asyncio.gather(
                *(send(http, POSTS) for _ in range(10)),
                *(send(http, VIEWER, headers=scene.bearer) for _ in range(5)),
                send(http, CREATE, {"title": "Back"}, scene.bearer),
            )
            ready_again = await http.get("/ready")
    # The figures, for `pytest -rP`: no assertion rests on them beyond the bounds.
    print("while down:", ", ".join(f"{name} {seconds:.3f} s" for name, _, seconds in refused))
    print(f"recovered {recovered:.2f} s after PostgreSQL was up; statuses {statuses}")

    for name, response, seconds in refused:
        assert seconds < 10, name
        assert_refused(response, "SERVICE_UNAVAILABLE", "2")
    assert ready.status_code == 503
    assert health.status_code == 200
    assert set(statuses) <= {200, 503}  # never a 500 from a connection that died
    for response, _ in after:
        assert_ok(response)
    assert after[-1][0].json()["data"] == {"createPost": {"__typename": "PostSuccess"}}
    assert ready_again.status_code == 200

    # One warning per refused request, under its id; no error, no traceback.
    lines = server_log(tmp_path)
    warned = {line["request_id"] for line in lines if line["level"] == "WARNING"}
    assert {response.headers["x-request-id"] for _, response, _ in refused} <= warned
    assert not [line for line in lines if line["level"] == "ERROR" or "exc_info" in line]


async def test_a_restart_between_requests_fails_no_request(
    live_server: LiveServer, scene: Scene, postgres_cluster: PostgresCluster
) -> None:
    """Every pooled connection dies with the restart, and no request notices: each is
    pinged before use and replaced."""
    with live_server(**NO_LIMITS) as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
            warm = await asyncio.gather(
                *(send(http, VIEWER, headers=scene.bearer) for _ in range(8))
            )
            postgres_cluster.stop()  # "fast": the pooled connections are closed under it
            postgres_cluster.start()
            after = await asyncio.gather(
                *(send(http, POSTS) for _ in range(8)),
                *(send(http, VIEWER, headers=scene.bearer) for _ in range(8)),
                send(http, CREATE, {"title": "Restarted"}, scene.bearer),
            )
    for response, _ in (*warm, *after):
        assert_ok(response)


async def test_updates_blocked_by_a_row_lock_time_out_cleanly_and_leave_the_pool_whole(
    live_server: LiveServer, scene: Scene, other_client: AsyncConnection
) -> None:
    env = {**NO_LIMITS, "AUDITQL_DB_LOCK_TIMEOUT_MS": "500", "AUDITQL_DB_POOL_SIZE": "2",
           "AUDITQL_DB_MAX_OVERFLOW": "0", "AUDITQL_DB_POOL_TIMEOUT": "10"}  # fmt: skip
    variables = {"id": scene.post_id, "title": "Blocked"}
    with live_server(**env) as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
            assert_ok((await send(http, VIEWER, headers=scene.bearer))[0])
            async with holding(other_client, ROW_LOCK, id=scene.post_key):
                one, one_seconds = await send(http, UPDATE, variables, scene.bearer)
                many = await asyncio.gather(
                    *(send(http, UPDATE, variables, scene.bearer) for _ in range(10))
                )
                # The lock is still held: reads and an unrelated write go through.
                reads = await asyncio.gather(
                    *(send(http, POST, {"id": scene.post_id}, scene.bearer) for _ in range(10))
                )
                unrelated, _ = await send(http, CREATE, {"title": "Unrelated"}, scene.bearer)
                in_use = await pool_in_use(http)
            released, _ = await send(http, UPDATE, {**variables, "title": "Free"}, scene.bearer)
    # They queue for the row: lock_timeout bounds each wait for a lock, and a waiter
    # waits for the one ahead of it first, so the n-th fails after about n x 500 ms.
    print(f"one blocked update: {one_seconds:.3f} s; ten at once on a pool of 2, seconds: "
          f"{sorted(round(s, 2) for _, s in many)}")  # fmt: skip

    assert one_seconds < 3
    assert_refused(one, "TIMEOUT", "1")
    for response, seconds in many:
        assert seconds < 10
        assert_refused(response, "TIMEOUT", "1")
    for response, _ in reads:
        assert assert_ok(response)["data"]["node"] == {"title": "Steady", "version": 1}
    assert assert_ok(unrelated)["data"] == {"createPost": {"__typename": "PostSuccess"}}
    assert in_use == 0
    # Nothing of the timed-out updates was written; the one after the lock is.
    assert assert_ok(released)["data"]["updatePost"]["post"] == {"title": "Free", "version": 2}
    assert [e.action for e in await audit_entries(scene.database, scene.post_key)] == [
        "create",
        "update",
    ]


async def past_statement_timeout(
    server: LiveServer, other_client: AsyncConnection
) -> tuple[httpx.Response, float, list[str], httpx.Response]:
    """A read blocked by a table lock past a 300 ms statement_timeout: its answer and
    seconds, the queries still waiting on locks right after, and a read once the lock
    is gone."""
    env = {**NO_LIMITS, "AUDITQL_DB_STATEMENT_TIMEOUT_MS": "300", "AUDITQL_DB_LOCK_TIMEOUT_MS": "0"}
    with server(**env) as served:
        async with httpx.AsyncClient(base_url=served.base, timeout=60) as http:
            async with holding(other_client, "LOCK TABLE posts IN ACCESS EXCLUSIVE MODE"):
                blocked, seconds = await send(http, POSTS)
                async with other_client.engine.connect() as watcher:
                    still_waiting = await waiting_on_locks(watcher)
            unblocked, _ = await send(http, POSTS)
    print(f"statement timeout answered in {seconds:.3f} s")
    return blocked, seconds, still_waiting, unblocked


async def test_a_statement_past_statement_timeout_is_cancelled_and_answered_timeout(
    live_server: LiveServer, scene: Scene, other_client: AsyncConnection
) -> None:
    blocked, seconds, still_waiting, unblocked = await past_statement_timeout(
        live_server, other_client
    )

    assert seconds < 5
    assert_refused(blocked, "TIMEOUT", "1")
    assert still_waiting == []  # cancelled on the server, not merely abandoned
    assert_ok(unblocked)


async def test_no_free_pooled_connection_within_the_pool_timeout_is_unavailable(
    live_server: LiveServer, scene: Scene, other_client: AsyncConnection
) -> None:
    env = {**NO_LIMITS, "AUDITQL_DB_POOL_SIZE": "1", "AUDITQL_DB_MAX_OVERFLOW": "0",
           "AUDITQL_DB_POOL_TIMEOUT": "1", "AUDITQL_DB_LOCK_TIMEOUT_MS": "20000"}  # fmt: skip
    with live_server(**env) as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
            assert_ok((await send(http, VIEWER, headers=scene.bearer))[0])
            # The update takes the only connection and waits for the row. (Reads have a
            # pool of their own: another write is what finds none free.)
            async with blocked_update(http, scene, other_client, "Patient") as update:
                starved, seconds = await send(http, CREATE, {"title": "Starved"}, scene.bearer)
            updated, _ = await update
            fed, _ = await send(http, POSTS)
    print(f"pool timeout answered in {seconds:.3f} s")

    assert seconds < 5
    assert_refused(starved, "SERVICE_UNAVAILABLE", "2")
    assert assert_ok(updated)["data"]["updatePost"]["post"] == {"title": "Patient", "version": 2}
    assert_ok(fed)


async def test_a_frozen_postgresql_is_503_within_seconds_and_the_pool_recovers(
    live_server: LiveServer, scene: Scene, postgres_cluster: PostgresCluster
) -> None:
    """The server keeps its default deadlines: 5 s for a round trip."""
    with live_server(**NO_LIMITS, **UNCACHED) as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
            warm = await asyncio.gather(
                *(send(http, POSTS) for _ in range(10)),
                *(send(http, VIEWER, headers=scene.bearer) for _ in range(4)),
            )
            with postgres_cluster.frozen():
                first = await asyncio.gather(
                    *(send(http, POSTS) for _ in range(20)),
                    *(send(http, VIEWER, headers=scene.bearer) for _ in range(5)),
                    *(send(http, CREATE, {"title": "Frozen"}, scene.bearer) for _ in range(5)),
                )
                then = await asyncio.gather(*(send(http, POSTS) for _ in range(10)))
                ready = await http.get("/ready")
            started, statuses = time.monotonic(), list[int]()
            while not statuses or statuses[-1] != 200:
                assert time.monotonic() - started < 15, statuses
                response, _ = await send(http, POSTS)
                statuses.append(response.status_code)
                await asyncio.sleep(0.1 if response.status_code != 200 else 0)
            recovered = time.monotonic() - started
            after = await asyncio.gather(
                *(send(http, POSTS) for _ in range(10)),
                send(http, CREATE, {"title": "Thawed"}, scene.bearer),
            )
    print("frozen, first requests, s:", sorted(round(s, 2) for _, s in first))
    print("frozen, later requests, s:", sorted(round(s, 2) for _, s in then))
    print(f"thawed: served again after {recovered:.2f} s; statuses {statuses}")

    for response, _ in warm:
        assert_ok(response)
    for response, seconds in (*first, *then):
        assert seconds < 7  # the 5 s deadline, and a little
        assert_refused(response, "SERVICE_UNAVAILABLE", "2")
    assert max(seconds for _, seconds in then) < 1  # known unreachable: refused at once
    assert ready.status_code == 503
    assert set(statuses) <= {200, 503}
    for response, _ in after:
        assert_ok(response)
    assert after[-1][0].json()["data"] == {"createPost": {"__typename": "PostSuccess"}}


async def test_waits_for_one_locked_row_never_add_up(
    live_server: LiveServer, scene: Scene, other_client: AsyncConnection
) -> None:
    """Five updates queue for a row another transaction holds: the first waits for the
    holder, the others for the first (the row's tuple lock), and a waiter handed the
    tuple lock just before its own lock_timeout would start a second full wait. Each
    is answered within its lock budget: lock_timeout plus half a second."""
    variables = {"id": scene.post_id, "title": "Queued"}
    rounds: list[list[tuple[httpx.Response, float]]] = []
    with live_server(**NO_LIMITS, AUDITQL_DB_LOCK_TIMEOUT_MS="2000") as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
            assert_ok((await send(http, VIEWER, headers=scene.bearer))[0])
            for _ in range(3):
                async with holding(other_client, ROW_LOCK, id=scene.post_key):
                    rounds.append(
                        await asyncio.gather(
                            *(send(http, UPDATE, variables, scene.bearer) for _ in range(5))
                        )
                    )
                    async with other_client.engine.connect() as watcher:
                        deadline = time.monotonic() + 2  # abandoned statements end too
                        while await waiting_on_locks(watcher):
                            assert time.monotonic() < deadline
                            await asyncio.sleep(0.05)
    print("seconds per round:", [sorted(round(s, 2) for _, s in one) for one in rounds])

    for response, seconds in (answer for one in rounds for answer in one):
        assert seconds < 3.6  # 2.5 s of budget, and a little; a second wait is 4 s
        assert_refused(response, "TIMEOUT", "1")
    assert [e.action for e in await audit_entries(scene.database, scene.post_key)] == ["create"]
