"""Reads from a streaming replica, on real replication (a primary and a hot standby made
with ``pg_basebackup -R``), through real ``auditql serve`` processes.

- Read-your-writes: writers and readers spread over two API processes, with the
  replica applying every commit half a second late, see no stale read when each read
  carries the consistency token of its client's last write, and do see stale reads
  without it (so the test can fail).
- A replica stopped or frozen costs no read: each is answered from the primary within
  the usual deadlines; once it is back, reads return to it.
- A replica further behind than ``AUDITQL_REPLICA_MAX_LAG`` leaves the rotation and
  comes back once it catches up.

Run with ``-rP`` to see the counts and timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gql.schema.ids import to_global_id
from gql.settings import Settings
from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.replicas import encode_token
from persistence.unit_of_work import UnitOfWork
from tests.factories.post import create_post
from tests.gql.conftest import make_person, served_env
from tests.support.replication import Replication, replicated, wait_for
from tests.support.replication import replica_state as replica_state_at
from tests.support.server import AUDITQL, Server, serving

DATABASE = "auditql_replicas"
CLIENTS, ROUNDS = 4, 5
UPDATE = """mutation($id: ID!, $title: String!) { updatePost(input: {id: $id, title: $title}) {
  __typename ... on PostSuccess { post { title } } } }"""
READ = "query($id: ID!) { node(id: $id) { ... on Post { title } } }"


@pytest.fixture(scope="module")
def replication(postgres_bindir: Path) -> Iterator[Replication]:
    with replicated(postgres_bindir) as pair:
        pair.create_database(DATABASE)
        migrate = [AUDITQL, "migrate"]
        env = {"AUDITQL_DATABASE_URL": pair.primary.url(DATABASE), "PATH": "/usr/bin:/bin"}
        subprocess.run(migrate, env=env, check=True, capture_output=True)
        yield pair


@pytest.fixture(scope="module")
def world(replication: Replication) -> dict[str, Any]:
    """A writer's token and one post per client, replicated before any test reads."""

    async def arrange() -> dict[str, Any]:
        database = Database.from_settings(Settings(database_url=replication.primary.url(DATABASE)))
        try:
            alice = await make_person(database, "alice")
            posts = []
            for n in range(CLIENTS):
                async with UnitOfWork(database, AuditContext(actor_id=alice.user.id)) as uow:
                    post = await create_post(
                        uow, title=f"Client {n}", status="published", published_at=datetime.now(UTC)
                    )
                posts.append(to_global_id("Post", post.id))
            return {"token": alice.token, "posts": posts}
        finally:
            await database.dispose()

    arranged = asyncio.run(arrange())
    replication.wait_caught_up()
    return arranged


@contextlib.contextmanager
def api(replication: Replication, tmp_path: Path, name: str, **env: str) -> Iterator[Server]:
    settings = served_env(
        replication.primary.url(DATABASE),
        AUDITQL_DATABASE_REPLICA_URLS=replication.replica.url(DATABASE),
        **env,
    )
    with serving(settings, tmp_path / f"{name}.log") as server:
        wait_for(lambda: replica_state(server)["inRotation"], "the replica joins the rotation")
        yield server


def replica_state(server: Server) -> dict[str, Any]:
    return replica_state_at(server.base)


def reads_by_target(server: Server) -> dict[str, float]:
    text = httpx.get(f"{server.base}/metrics", timeout=10).text
    return {
        m[0]: float(m[1]) for m in re.findall(r'auditql_reads_total\{target="(.*?)"\} (\S+)', text)
    }


async def post(
    http: httpx.AsyncClient, server: Server, query: str, variables: dict[str, Any],
    headers: dict[str, str],
) -> httpx.Response:  # fmt: skip
    return await http.post(
        f"{server.base}/graphql", json={"query": query, "variables": variables}, headers=headers
    )


async def stale_reads(servers: list[Server], world: dict[str, Any], *, tokens: bool) -> int:
    """Each client updates its post through one process and reads it back through the
    other, ROUNDS times, all clients at once; how many reads missed their own write."""
    bearer = {"Authorization": f"Bearer {world['token']}"}

    async def client(n: int, http: httpx.AsyncClient) -> int:
        stale = 0
        for r in range(ROUNDS):
            writer, reader = servers[(n + r) % 2], servers[(n + r + 1) % 2]
            title = f"Client {n} round {r} {'with' if tokens else 'without'} tokens"
            wrote = await post(http, writer, UPDATE, {"id": world["posts"][n], "title": title},
                               bearer)  # fmt: skip
            assert wrote.json()["data"]["updatePost"]["__typename"] == "PostSuccess", wrote.text
            token = wrote.headers["x-consistency-token"]
            assert wrote.json()["extensions"]["consistencyToken"] == token
            headers = {"X-Consistency-Token": token} if tokens else {}
            read = await post(http, reader, READ, {"id": world["posts"][n]}, headers)
            assert read.status_code == 200, read.text
            stale += read.json()["data"]["node"]["title"] != title
        return stale

    async with httpx.AsyncClient(timeout=30) as http:
        return sum(await asyncio.gather(*(client(n, http) for n in range(CLIENTS))))


def test_read_your_writes_across_processes_by_consistency_token(
    replication: Replication, world: dict[str, Any], tmp_path: Path
) -> None:
    replication.set_apply_delay(0.5)
    try:
        # Lag within the bound: the replica stays in rotation, half a second behind.
        env = {"AUDITQL_REPLICA_MAX_LAG": "30", "AUDITQL_REPLICA_WAIT_MS": "3000"}
        with (
            api(replication, tmp_path, "one", **env) as one,
            api(replication, tmp_path, "two", **env) as two,
        ):
            with_tokens = asyncio.run(stale_reads([one, two], world, tokens=True))
            without = asyncio.run(stale_reads([one, two], world, tokens=False))
            reads = {**reads_by_target(one)}
    finally:
        replication.set_apply_delay(0)
    print(f"{CLIENTS * ROUNDS} reads each: stale with tokens {with_tokens}, without {without}; "
          f"process one's reads by target {reads}")  # fmt: skip
    assert with_tokens == 0
    assert without > 0  # the same run without tokens does read stale data
    assert any(target != "primary" and count > 0 for target, count in reads.items())


def read_all(server: Server, world: dict[str, Any], count: int = 20) -> list[float]:
    """``count`` reads without a token, one after another: each one's seconds."""
    took = []
    for n in range(count):
        started = time.monotonic()
        response = httpx.post(
            f"{server.base}/graphql", timeout=30,
            json={"query": READ, "variables": {"id": world["posts"][n % CLIENTS]}},
        )  # fmt: skip
        took.append(time.monotonic() - started)
        assert response.status_code == 200, response.text
        assert response.json()["data"]["node"]["title"], response.text
    return took


def test_a_stopped_replica_costs_no_read_and_rejoins(
    replication: Replication, world: dict[str, Any], tmp_path: Path
) -> None:
    with api(replication, tmp_path, "stopped") as server:
        replication.replica.stop()
        try:
            took = read_all(server, world)
            left = wait_for(lambda: not replica_state(server)["inRotation"], "it leaves")
            primary_before = reads_by_target(server).get("primary", 0)
            read_all(server, world, 5)
            assert reads_by_target(server)["primary"] >= primary_before + 5
        finally:
            replication.replica.start()
        back = wait_for(lambda: replica_state(server)["inRotation"], "it rejoins")
        replica_before = reads_by_target(server).get(replica_state(server)["replica"], 0)
        read_all(server, world, 5)
        assert reads_by_target(server)[replica_state(server)["replica"]] >= replica_before + 5
    print(f"replica stopped: 20 reads, slowest {max(took):.2f} s; out of rotation after "
          f"{left:.2f} s more; back in rotation {back:.2f} s after its start")  # fmt: skip
    assert max(took) < 5


def test_a_frozen_replica_costs_no_read_and_rejoins(
    replication: Replication, world: dict[str, Any], tmp_path: Path
) -> None:
    with api(replication, tmp_path, "frozen") as server:
        with replication.replica.frozen():
            took = read_all(server, world)
            left = wait_for(lambda: not replica_state(server)["inRotation"], "it leaves")
            quick = read_all(server, world, 5)
        back = wait_for(lambda: replica_state(server)["inRotation"], "it rejoins")
    print(f"replica frozen: 20 reads, slowest {max(took):.2f} s, then {max(quick):.2f} s; "
          f"out of rotation {left:.2f} s after; back {back:.2f} s after the thaw")  # fmt: skip
    # At worst one read in flight waits out the round-trip deadline, then the primary.
    assert max(took) < Settings().command_timeout + 2
    assert max(quick) < 1


def test_a_replica_far_behind_is_skipped_until_it_catches_up(
    replication: Replication, world: dict[str, Any], tmp_path: Path
) -> None:
    bearer = {"Authorization": f"Bearer {world['token']}"}
    with api(replication, tmp_path, "behind", AUDITQL_REPLICA_MAX_LAG="1") as server:
        replication.set_apply_delay(4)
        try:
            title = "Written while the replica is four seconds behind"
            wrote = httpx.post(
                f"{server.base}/graphql",
                headers=bearer,
                json={"query": UPDATE, "variables": {"id": world["posts"][0], "title": title}},
            )
            assert wrote.json()["data"]["updatePost"]["__typename"] == "PostSuccess"
            left = wait_for(lambda: not replica_state(server)["inRotation"], "it leaves")
            # Out of rotation, reads come from the primary: fresh even without a token.
            read = httpx.post(
                f"{server.base}/graphql",
                json={"query": READ, "variables": {"id": world["posts"][0]}},
            )
            assert read.json()["data"]["node"]["title"] == title
        finally:
            replication.set_apply_delay(0)
        back = wait_for(lambda: replica_state(server)["inRotation"], "it catches up")
    print(f"replica 4 s behind, max lag 1 s: out of rotation {left:.2f} s after the write; "
          f"back {back:.2f} s after the delay was lifted")  # fmt: skip


def test_a_forged_token_costs_at_most_the_wait(
    replication: Replication, world: dict[str, Any], tmp_path: Path
) -> None:
    far_future = encode_token(2**63)  # a WAL position no replica will reach
    with api(replication, tmp_path, "forged", AUDITQL_REPLICA_WAIT_MS="300") as server:
        timings = {}
        for token in (far_future, "not a token", "1." + "A" * 18):
            started = time.monotonic()
            response = httpx.post(
                f"{server.base}/graphql", headers={"X-Consistency-Token": token},
                json={"query": READ, "variables": {"id": world["posts"][0]}},
            )  # fmt: skip
            timings[token] = time.monotonic() - started
            assert response.json()["data"]["node"]["title"], response.text
        metrics = httpx.get(f"{server.base}/metrics").text
    assert 'auditql_read_waits_total{outcome="primary"} 1.0' in metrics
    assert 0.3 <= timings[far_future] < 2
    print(f"forged tokens: {', '.join(f'{t[:12]!r} {s:.2f} s' for t, s in timings.items())}")
