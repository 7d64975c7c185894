"""Masking under load, through a real ``auditql serve`` on PostgreSQL in production mode.

Several hundred concurrent requests fail for real, inside the served_database: a trigger on
``tags`` raises an exception quoting the row, and a column the ``featureFlag`` query
reads has been renamed away, so the driver's message quotes SQL. Every response is
``INTERNAL_SERVER_ERROR`` / "Unexpected error." under the request's own id, with nothing
of the cause in it; the server log holds each failure in full (the traceback and the
secret text) under that same id, one line per request; and afterwards the server still
answers, with no pooled connection left checked out and none left inside a transaction.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gql.settings import Settings
from persistence.engine import Database
from tests.gql.conftest import LiveServer, make_person
from tests.support.audit import audit_entries
from tests.support.postgres import PostgresCluster

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

REQUESTS = 300
CONNECTIONS = 100  # client connections open at once: the server sees 100 requests in flight
SERVER_ENV = {
    # 100 requests in flight share 20 pooled connections: on a busy machine some wait
    # past the 5 s default. How long a request may queue is not what this test is about.
    "AUDITQL_DB_POOL_TIMEOUT": "60",
}

# Failures the error policy cannot know: an internal error raised by a trigger (SQLSTATE
# XX000) and a column that does not exist (42703). Neither is a broken rule nor a
# transient fault, so both must be masked. Ref: https://www.postgresql.org/docs/15/errcodes-appendix.html
BREAK_THE_DATABASE = """
CREATE FUNCTION secret_refusal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'secret internals %', NEW.name USING ERRCODE = 'XX000';
END $$;
CREATE TRIGGER secret_trigger BEFORE INSERT ON tags
  FOR EACH ROW EXECUTE FUNCTION secret_refusal();
ALTER TABLE feature_flags RENAME COLUMN rollout_percentage TO secret_percentage;
"""
CREATE_TAG = "mutation($name: String!) { createTag(input: {name: $name}) { __typename } }"
FEATURE_FLAG = "query($key: String!) { featureFlag(key: $key) { key } }"
MISSING_COLUMN = "column feature_flags.rollout_percentage does not exist"
# What must never reach a client: the exception's text, SQL and the names it quotes
# (tables, columns, the trigger and its function), SQLSTATEs, stacks, driver classes.
SECRETS = ("secret", "SELECT", "INSERT", "FROM", "tags", "feature_flags", "rollout_percentage",
           "does not exist", "XX000", "42703", "Traceback", 'File "', ".py", "asyncpg",
           "sqlalchemy", "postgres", "InternalServerError", "UndefinedColumnError",
           "InternalError", "ProgrammingError", "DBAPIError")  # fmt: skip


class Failing(NamedTuple):
    request_id: str
    body: dict[str, Any]
    field: str  # the field that fails
    cause: str  # what the server log must quote


def failing_request(n: int) -> Failing:
    """Request n: even ones create a tag the trigger refuses, odd ones read the renamed
    column."""
    request_id = f"masked-{n:03d}"
    if n % 2:
        body = {"query": FEATURE_FLAG, "variables": {"key": f"flag-{n}"}}
        return Failing(request_id, body, "featureFlag", MISSING_COLUMN)
    name = f"secret-{n}"
    body = {"query": CREATE_TAG, "variables": {"name": name}}
    return Failing(request_id, body, "createTag", f"secret internals {name}")


async def pool_in_use(http: httpx.AsyncClient) -> float:
    """The server's ``auditql_db_pool_connections_in_use`` gauge."""
    families = text_string_to_metric_families((await http.get("/metrics")).text)
    [sample] = [s for f in families if f.name == "auditql_db_pool_connections_in_use"
                for s in f.samples]  # fmt: skip
    return sample.value


async def server_connections(served_database: Database) -> list[str]:
    """The states of the server's connections to this served_database (ours excluded)."""
    async with served_database.reader() as session:
        rows = await session.execute(text(
            "SELECT coalesce(state, '') FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'auditql' AND pid <> pg_backend_pid()"
        ))  # fmt: skip
        return list(rows.scalars())


async def test_hundreds_of_concurrent_failures_are_masked_logged_and_leak_nothing(
    live_server: LiveServer, served_database: Database, database_url: str,
    postgres_cluster: PostgresCluster, tmp_path: Path,
) -> None:  # fmt: skip
    root = await make_person(served_database, "root", superuser=True)
    postgres_cluster.psql(BREAK_THE_DATABASE, str(make_url(database_url).database))
    bearer = {"Authorization": f"Bearer {root.token}"}
    viewer = {"query": "{ viewer { username } }"}
    sent = [failing_request(n) for n in range(REQUESTS)]
    # A connection per request: reusing one that the server's 5 s keep-alive timer is
    # closing just then resets it now and again under this load, which is not masking.
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=0)

    with live_server(**SERVER_ENV) as server:
        async with httpx.AsyncClient(base_url=server.base, limits=limits, timeout=60) as http:
            # A first request records the token's use, so the load is failures only.
            assert (await http.post("/graphql", json=viewer, headers=bearer)).status_code == 200
            started = time.perf_counter()
            responses = await asyncio.gather(*(
                http.post("/graphql", json=failing.body,
                          headers={**bearer, "X-Request-ID": failing.request_id})
                for failing in sent
            ))  # fmt: skip
            elapsed = time.perf_counter() - started

            healthy = await http.post("/graphql", json=viewer, headers=bearer)
            ready = await http.get("/ready")
            in_use = await pool_in_use(http)
            connections = await server_connections(served_database)
    # The figures, for `pytest -rP` (and the README): no assertion rests on them.
    print(f"{REQUESTS} failing requests, {CONNECTIONS} at once: {elapsed:.2f} s, "
          f"{REQUESTS / elapsed:.0f} requests/s; afterwards {in_use:.0f} pooled connections "
          f"in use, {len(connections)} server connections {set(connections)}")  # fmt: skip

    for failing, response in zip(sent, responses, strict=True):
        request_id = failing.request_id
        assert response.status_code == 200, response.text
        assert response.headers["x-request-id"] == request_id
        [error] = response.json()["errors"]
        assert error["message"] == "Unexpected error."
        assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
        assert error["path"] == [failing.field]
        leaked = [secret for secret in SECRETS if secret in response.text]
        assert not leaked, (request_id, leaked, response.text)

    assert healthy.json() == {"data": {"viewer": {"username": "root"}}}
    assert ready.status_code == 200
    assert in_use == 0
    # At most the pool's size plus its overflow, and none idle inside a transaction.
    pool = Settings(database_url=database_url)
    assert 0 < len(connections) <= pool.db_pool_size + pool.db_max_overflow
    assert set(connections) == {"idle"}
    assert [e for e in await audit_entries(served_database) if e.entity_type == "tags"] == []

    # Every line is JSON (none torn by the load), and each request has exactly one error
    # line, carrying its id, its traceback and the cause's own text.
    lines = [json.loads(line) for line in (tmp_path / "server.log").read_text().splitlines()]
    logged: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        if line["logger"] == "auditql.errors":
            logged[line["request_id"]].append(line)
    assert sorted(logged) == [failing.request_id for failing in sent]
    for failing in sent:
        [line] = logged[failing.request_id]
        assert line["level"] == "ERROR"
        assert failing.request_id in line["message"]
        assert "Traceback" in line["exc_info"]
        assert failing.cause in line["exc_info"]


async def test_an_unexpected_failure_while_authenticating_is_masked_and_logged_too(
    live_server: LiveServer, served_database: Database, database_url: str,
    postgres_cluster: PostgresCluster, tmp_path: Path,
) -> None:  # fmt: skip
    root = await make_person(served_database, "root", superuser=True)
    postgres_cluster.psql(
        "ALTER TABLE api_tokens RENAME COLUMN token_hash TO secret_hash",
        str(make_url(database_url).database),
    )
    headers = {"Authorization": f"Bearer {root.token}", "X-Request-ID": "auth-1"}

    with live_server() as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            response = await http.post(
                "/graphql", json={"query": "{ viewer { username } }"}, headers=headers
            )

    assert response.status_code == 500
    assert response.headers["x-request-id"] == "auth-1"
    assert response.json() == {"errors": [{"message": "Unexpected error.", "extensions": {
        "code": "INTERNAL_SERVER_ERROR", "requestId": "auth-1"}}]}  # fmt: skip
    lines = [json.loads(line) for line in (tmp_path / "server.log").read_text().splitlines()]
    [line] = [line for line in lines if line["level"] == "ERROR"]
    assert line["request_id"] == "auth-1"
    assert "Traceback" in line["exc_info"]
    assert "token_hash does not exist" in line["exc_info"]
