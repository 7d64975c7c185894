"""Fair turns: at most ``capacity`` at once; waiting clients take turns in rotation, one
per round, and none holds more than its share while others wait; requests that finish
without waiting take a round each; a cancelled waiter leaks nothing.
The second half proves it through a real server on PostgreSQL: one client's requests
stuck on a locked row do not make another client wait behind them, and documents
over the size limit are refused before they are parsed."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from gql.http.turns import FairTurns
from tests.gql.conftest import LiveServer, Scene, make_person
from tests.gql.test_database_faults import ROW_LOCK, UPDATE, holding, send, waiting_on_locks


async def hold(turns: FairTurns, client: str, log: list[str], release: asyncio.Event) -> None:
    async with turns.turn(client):
        log.append(client)
        await release.wait()


async def settle() -> None:
    """Enough passes of the event loop for every round that can happen to happen."""
    for _ in range(30):
        await asyncio.sleep(0)


async def test_waiting_clients_take_turns_in_rotation_within_their_shares() -> None:
    turns, log = FairTurns(8), list[str]()
    releases = [asyncio.Event() for _ in range(20)]
    flood = [asyncio.create_task(hold(turns, "a", log, r)) for r in releases]
    await settle()
    assert log == ["a"] * 6  # alone, a client may use three quarters of the turns
    others = {c: asyncio.Event() for c in "bcd"}
    quiet = [asyncio.create_task(hold(turns, c, log, e)) for c, e in others.items()]
    await settle()
    assert sorted(log[6:]) == ["b", "c"]  # newcomers take the two kept free; d waits
    releases[0].set()
    await settle()
    assert log[8] == "d"  # the freed turn goes to d, not to a's next request
    for release in releases[1:4]:
        release.set()
    await settle()
    assert log.count("a") == 6  # a holds two: its share of 8 turns among 4 clients
    for event in others.values():
        event.set()
    for release in releases:
        release.set()
    await asyncio.gather(*flood, *quiet)
    assert log.count("a") == 20


async def test_requests_that_finish_at_once_take_a_round_each() -> None:
    """A burst of refusals cannot take a whole pass of the loop from another client."""
    turns, order = FairTurns(8), list[str]()

    async def instant(client: str) -> None:
        async with turns.turn(client):
            order.append(client)

    async def steady() -> None:  # another client's request, a round trip at a time
        async with turns.turn("steady"):
            for _ in range(5):
                order.append("steady")
                await asyncio.sleep(0)

    await asyncio.gather(*(instant("burst") for _ in range(50)), steady())
    steady_done = max(i for i, c in enumerate(order) if c == "steady")
    assert order[:steady_done].count("burst") <= 5  # not fifty


async def test_a_cancelled_waiter_leaks_no_turn() -> None:
    turns, log, release = FairTurns(1), list[str](), asyncio.Event()
    holder = asyncio.create_task(hold(turns, "a", log, release))
    await settle()
    waiter = asyncio.create_task(hold(turns, "b", log, asyncio.Event()))
    await settle()
    waiter.cancel()
    release.set()
    await holder
    last = asyncio.create_task(hold(turns, "c", log, release))
    await asyncio.wait_for(last, 1)
    assert log == ["a", "c"]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_one_client_s_stuck_requests_do_not_queue_another_client(
    live_server: LiveServer, scene: Scene, other_client: AsyncConnection
) -> None:
    """Four turns; alice's six updates all wait on a row another transaction holds.
    Bob's read does not wait for them: alice alone may hold three turns, not four."""
    bob = await make_person(scene.database, "bob")
    env = {"AUDITQL_MAX_CONCURRENT_REQUESTS": "4", "AUDITQL_DB_LOCK_TIMEOUT_MS": "3000"}
    variables = {"id": scene.post_id, "title": "Stuck"}
    with live_server(**env) as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
            bearer = {"Authorization": f"Bearer {bob.token}"}
            await send(http, "{ viewer { id } }", headers=bearer)  # bob's token noted
            async with holding(other_client, ROW_LOCK, id=scene.post_key):
                stuck = [
                    asyncio.create_task(send(http, UPDATE, variables, scene.bearer))
                    for _ in range(6)
                ]
                async with other_client.engine.connect() as watcher:
                    deadline = time.monotonic() + 10
                    while not await waiting_on_locks(watcher):
                        assert time.monotonic() < deadline
                        await asyncio.sleep(0.05)
                read, seconds = await send(http, "{ posts { totalCount } }", headers=bearer)
            await asyncio.gather(*stuck)
    print(f"bob's read beside alice's stuck updates: {seconds:.3f} s")
    assert read.status_code == 200
    assert seconds < 1.5  # first come, first served, it waited for alice's first (3 s)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_document_over_the_size_limit_is_refused_before_parsing(
    live_server: LiveServer, scene: Scene
) -> None:
    """500 KB of tokens: 413 DOCUMENT_TOO_LARGE, a GraphQL error body."""
    flood = "{ " + "a " * 250_000 + "}"
    with live_server() as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            response = await http.post("/graphql", json={"query": flood})
            under = await http.post("/graphql", json={"query": "{ " + " " * 30_000 + "posts "
                                                      "{ totalCount } }"})  # fmt: skip
    assert response.status_code == 413
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "DOCUMENT_TOO_LARGE"
    assert error["message"] == (
        "The GraphQL document is larger than 32,768 bytes; send large values as variables."
    )
    assert under.status_code == 200
