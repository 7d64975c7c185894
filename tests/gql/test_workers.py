"""``auditql serve --workers N``: N processes answering on one address, a dead one
replaced, all stopping together on SIGTERM (gracefully, exit 0), sharing the rate limits
through Redis, and warning at start when each keeps its own."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.repositories.post import PostRepository
from persistence.unit_of_work import UnitOfWork
from tests.conftest import TEST_KEKS, TEST_SIGNING_KEY
from tests.gql.conftest import Scene, make_person, served_env
from tests.support.audit import audit_entries
from tests.support.processes import client_port, holder, parent_of
from tests.support.rate_windows import within_one_window
from tests.support.server import AUDITQL, Server, assert_refused_soon, free_port, serving

GRACE_SECONDS = 10
UPDATE = """mutation($id: ID!) { updatePost(input: {id: $id, title: "Finished"}) {
  __typename ... on PostSuccess { post { title version } } } }"""


def log_lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def started_workers(log: Path) -> list[int]:
    """The pids of the workers started so far, as each logs itself."""
    started = (re.fullmatch(r"Started server process \[(\d+)\]", line["message"])
               for line in log_lines(log))  # fmt: skip
    return [int(match[1]) for match in started if match]


async def answering_process(server: Server, request: httpx.Request) -> tuple[httpx.Response, int]:
    """The response to ``request`` sent over a new connection, and the pid of the
    process that held the connection's server end while it was open."""
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.send(request)
        pid = holder(int(server.base.rpartition(":")[2]), client_port(response))
    return response, pid


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_two_workers_answer_on_one_address(
    database_url: str, served_database: Database, tmp_path: Path
) -> None:
    alice = await make_person(served_database, "alice")
    log = tmp_path / "server.log"
    with serving(served_env(database_url), log, "--no-migrate", "--workers", "2") as server:
        viewer = httpx.Request(
            "POST", f"{server.base}/graphql", json={"query": "{ viewer { username } }"},
            headers={"Authorization": f"Bearer {alice.token}"},
        )  # fmt: skip
        pids: set[int] = set()
        # Each connection goes to whichever worker accepts it first: a few do to see both.
        for _ in range(50):
            response, pid = await answering_process(server, viewer)
            assert response.json() == {"data": {"viewer": {"username": "alice"}}}
            pids.add(pid)
            if len(pids) == 2:
                break
        parents = {parent_of(pid) for pid in pids}

    assert len(pids) == 2
    assert parents == {server.process.pid}
    warnings = [line for line in log_lines(log) if line["level"] == "WARNING"]
    assert [line["logger"] for line in warnings] == ["auditql.rate_limit"]
    assert warnings[0]["message"].startswith(
        "2 worker processes with AUDITQL_RATE_LIMIT_STORAGE=memory://: each process keeps "
        "its own rate-limit counters"
    )
    assert "set it to a redis:// URL" in warnings[0]["message"]


@asynccontextmanager
async def row_locked(database: Database, post_id: Any) -> AsyncIterator[None]:
    """Another writer holding the post's row lock until the block ends."""
    async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
        await PostRepository(uow.session).get(post_id, for_update=True)
        yield


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_sigterm_stops_every_worker_gracefully_and_exits_0(
    database_url: str, scene: Scene, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    env = served_env(
        database_url,
        AUDITQL_SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS),
        # The mutation waits for the lock as long as the test needs.
        AUDITQL_DB_LOCK_TIMEOUT_MS="20000",
        AUDITQL_DB_STATEMENT_TIMEOUT_MS="20000",
    )
    with serving(env, log, "--no-migrate", "--workers", "2") as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            async with row_locked(scene.database, scene.post_key):
                in_flight = asyncio.create_task(http.post(
                    "/graphql", json={"query": UPDATE, "variables": {"id": scene.post_id}},
                    headers=scene.bearer,
                ))  # fmt: skip
                await asyncio.sleep(1.0)  # the mutation now waits for the lock
                assert not in_flight.done()
                server.process.send_signal(signal.SIGTERM)
                stopped_at = time.monotonic()
                await assert_refused_soon(server.base)
                assert not in_flight.done()
            response = await in_flight
        exit_code = await asyncio.to_thread(server.process.wait, GRACE_SECONDS + 5)

    assert response.json()["data"]["updatePost"] == {
        "__typename": "PostSuccess",
        "post": {"title": "Finished", "version": 2},
    }
    assert exit_code == 0
    assert time.monotonic() - stopped_at < GRACE_SECONDS
    assert [e.action for e in await audit_entries(scene.database, scene.post_key)] == [
        "create",
        "update",
    ]
    messages = [line["message"] for line in log_lines(log)]
    workers = started_workers(log)
    assert len(workers) == 2
    for pid in workers:
        # Each stopped its own way to the end (the app's lifespan closed its pool)...
        assert f"Finished server process [{pid}]" in messages
        # ...and is gone.
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_worker_that_dies_is_replaced(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with serving(served_env(database_url), log, "--no-migrate", "--workers", "2") as server:
        deadline = time.monotonic() + 30
        while len(first := started_workers(log)) < 2:  # /health needed only one
            assert time.monotonic() < deadline, "the second worker did not start"
            await asyncio.sleep(0.1)
        os.kill(first[0], signal.SIGKILL)
        while len(started_workers(log)) < 3:
            assert time.monotonic() < deadline, "no worker replaced the one that died"
            await asyncio.sleep(0.1)
        replacement = started_workers(log)[2]
        pids: set[int] = set()
        health = httpx.Request("GET", f"{server.base}/health")
        while len(pids) < 2 and time.monotonic() < deadline:
            response, pid = await answering_process(server, health)
            assert response.status_code == 200
            pids.add(pid)

    assert pids == {first[1], replacement}


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_workers_sharing_redis_share_one_budget(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    budget = 6
    log = tmp_path / "server.log"
    env = served_env(
        database_url,
        AUDITQL_RATE_LIMIT_STORAGE=redis_url,
        AUDITQL_RATE_LIMIT_PER_ADDRESS=f"{budget}/minute",
    )
    with serving(env, log, "--no-migrate", "--workers", "2") as server:
        within_one_window()
        anonymous = httpx.Request(
            "POST", f"{server.base}/graphql", json={"query": "{ __typename }"}
        )
        statuses: list[int] = []
        pids: set[int] = set()
        # More requests than the budget, until both workers have answered some: with a
        # budget each, both together would admit more than one budget.
        while len(statuses) <= budget or len(pids) < 2:
            assert len(statuses) < 60, "one worker accepted every connection"
            response, pid = await answering_process(server, anonymous)
            statuses.append(response.status_code)
            pids.add(pid)

    assert statuses.count(200) == budget
    assert set(statuses) == {200, 429}
    assert [line for line in log_lines(log) if line["level"] == "WARNING"] == []


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_worker_that_cannot_start_stops_the_service_with_status_3(
    workers: str, tmp_path: Path
) -> None:
    """As one process does: the app's start-up fails (an unknown database driver) and
    the supervisor stops rather than start worker after worker."""
    env = {
        "PATH": "/usr/bin:/bin",
        "AUDITQL_ENVIRONMENT": "production",
        "AUDITQL_DATABASE_URL": "postgresql+nosuchdriver://auditql@127.0.0.1/auditql",
        "AUDITQL_AUDIT_KEKS": TEST_KEKS,
        "AUDITQL_AUDIT_SIGNING_KEY": TEST_SIGNING_KEY,
        "AUDITQL_PORT": str(free_port()),
    }
    result = subprocess.run(
        [AUDITQL, "serve", "--workers", workers], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "Application startup failed. Exiting." in result.stderr
