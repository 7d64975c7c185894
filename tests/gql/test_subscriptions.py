"""Subscriptions over real WebSockets against ``auditql serve`` (graphql-transport-ws), on
both databases: committed changes only, in commit order, resumable from a cursor with no
gap and no duplicate, seen through each subscriber's permissions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from sqlalchemy import select

from persistence.audit import AuditContext
from persistence.base import utcnow
from persistence.engine import Database
from persistence.models import ApiToken, User
from persistence.unit_of_work import UnitOfWork
from tests.factories.post import create_post as add_post
from tests.gql.conftest import LiveServer, Person, make_person
from tests.gql.factories import create_post, mutate, succeed
from tests.support.graphql import GraphQLClient
from tests.support.live import PROTOCOL, running, subscriber

AUDIT = "subscription($after: String) { auditEvents(after: $after) { position action entityType } }"
COMMENTS = """subscription($post: ID!, $after: String) {
    commentAdded(postId: $post, after: $after) {
        cursor comment { body createdBy { username } } } }"""
CHANGES = """subscription($id: ID!, $after: String) {
    nodeChanged(id: $id, after: $after) { cursor action node { ... on Post { title status } } } }"""

postgresql_only = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


async def settled() -> None:
    """Wait until what was committed has its position (the sequencer's 50 ms, then a
    read): a subscription without a cursor starts after the last position its process
    has seen, and would otherwise still receive it."""
    await asyncio.sleep(0.5)


@contextlib.asynccontextmanager
async def http(base: str) -> AsyncIterator[GraphQLClient]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        yield GraphQLClient(client)


async def comment(client: GraphQLClient, who: Person, post_id: str, body: str) -> None:
    await succeed(client, who, "createComment", postId=post_id, body=body)


async def test_committed_changes_reach_their_subscribers_in_commit_order(
    live_server: LiveServer, served_database: Database
) -> None:
    admin = await make_person(served_database, "admin", superuser=True)
    alice = await make_person(served_database, "alice")
    with live_server() as server:
        async with http(server.base) as client:
            post = await create_post(client, alice, publish=True, title="Live")
            await settled()
            async with subscriber(server.base, admin.token) as ws:
                await ws.subscribe("audit", AUDIT)
                await ws.subscribe("comments", COMMENTS, post=post["id"])
                await ws.subscribe("changes", CHANGES, id=post["id"])
                await running(server.base, 3)  # subscribed before the writes below
                await comment(client, alice, post["id"], "First!")
                await succeed(client, alice, "updatePost", id=post["id"], title="Livelier")

                created = (await ws.next("comments"))["commentAdded"]
                assert created["comment"] == {"body": "First!", "createdBy": {"username": "alice"}}
                changed = (await ws.next("changes"))["nodeChanged"]
                assert changed["action"] == "UPDATE"
                assert changed["node"] == {"title": "Livelier", "status": "PUBLISHED"}
                audit = [(await ws.next("audit"))["auditEvents"] for _ in range(2)]
                assert [(e["action"], e["entityType"]) for e in audit] == [
                    ("CREATE", "comments"), ("UPDATE", "posts"),
                ]  # fmt: skip
                assert [e["position"] for e in audit] == [created["cursor"], changed["cursor"]]
                assert int(created["cursor"]) < int(changed["cursor"])
                await ws.nothing_more("comments", 0.5)


async def test_a_rolled_back_mutation_emits_nothing(
    live_server: LiveServer, served_database: Database
) -> None:
    admin = await make_person(served_database, "admin", superuser=True)
    alice = await make_person(served_database, "alice")
    with live_server() as server:
        async with http(server.base) as client, subscriber(server.base, admin.token) as ws:
            await create_post(client, alice, title="Taken", slug="taken")
            await settled()
            await ws.subscribe("audit", AUDIT)
            await running(server.base, 1)
            refused = await mutate(client, alice, "createPost", title="Again", slug="taken")
            assert refused["__typename"] == "AlreadyExistsError"  # its INSERT rolled back
            await create_post(client, alice, title="Fresh")
            event = (await ws.next("audit"))["auditEvents"]
            assert (event["action"], event["entityType"]) == ("CREATE", "posts")
            await ws.nothing_more("audit")


async def test_a_cursor_resumes_with_no_gap_and_no_duplicate(
    live_server: LiveServer, served_database: Database
) -> None:
    alice = await make_person(served_database, "alice")
    with live_server() as server:
        async with http(server.base) as client:
            post = await create_post(client, alice, publish=True, title="Resumable")
            await comment(client, alice, post["id"], "one")
            async with subscriber(server.base) as ws:  # anonymous: the post is published
                await ws.subscribe("c", COMMENTS, post=post["id"], after="0")
                first = (await ws.next("c"))["commentAdded"]
                await comment(client, alice, post["id"], "two")
                second = (await ws.next("c"))["commentAdded"]
            await comment(client, alice, post["id"], "three")  # while nobody listens
            async with subscriber(server.base) as ws:
                await ws.subscribe("c", COMMENTS, post=post["id"], after=second["cursor"])
                await asyncio.sleep(0.3)
                await comment(client, alice, post["id"], "four")
                rest = [(await ws.next("c"))["commentAdded"] for _ in range(2)]
                await ws.nothing_more("c", 0.5)
    bodies = [e["comment"]["body"] for e in (first, second, *rest)]
    assert bodies == ["one", "two", "three", "four"]
    cursors = [int(e["cursor"]) for e in (first, second, *rest)]
    assert cursors == sorted(set(cursors))


@postgresql_only
async def test_commits_out_of_id_order_are_delivered_in_commit_order_and_resumed(
    live_server: LiveServer, served_database: Database
) -> None:
    """T1 makes its audit entry (an older UUIDv7) before T2 but commits after it. One
    subscriber stays connected; another leaves after T2's event and resumes from it
    before T1 commits: both get T1, after T2. Replaying by id would skip it."""
    admin = await make_person(served_database, "admin", superuser=True)
    with live_server() as server:
        await settled()  # the admin's creation is not T1's or T2's event
        async with subscriber(server.base, admin.token) as staying:
            await staying.subscribe("a", AUDIT)
            await running(server.base, 1)
            async with UnitOfWork(served_database, AuditContext(admin.user.id)) as t1:
                await add_post(t1, title="T1")  # its entry's id is made now
                async with subscriber(server.base, admin.token) as leaving:
                    await leaving.subscribe("a", AUDIT)
                    await running(server.base, 2)
                    async with UnitOfWork(served_database, AuditContext(admin.user.id)) as t2:
                        await add_post(t2, title="T2")
                    seen = (await leaving.next("a"))["auditEvents"]
                assert (await staying.next("a"))["auditEvents"] == seen
            # T1 has committed.
            async with subscriber(server.base, admin.token) as back:
                await back.subscribe("a", AUDIT, after=seen["position"])
                resumed = (await back.next("a"))["auditEvents"]
                await back.nothing_more("a", 0.5)
            live = (await staying.next("a"))["auditEvents"]
    assert resumed == live
    assert int(resumed["position"]) > int(seen["position"])


@postgresql_only
async def test_two_processes_each_deliver_every_change_once(
    live_server: LiveServer, served_database: Database
) -> None:
    alice = await make_person(served_database, "alice")
    with live_server() as one, live_server() as two:
        async with http(one.base) as client:
            post = await create_post(client, alice, publish=True, title="Shared")
        async with subscriber(one.base) as on_one, subscriber(two.base) as on_two:
            for ws in (on_one, on_two):
                await ws.subscribe("c", COMMENTS, post=post["id"])
            await running(one.base, 1)
            await running(two.base, 1)
            for n, base in enumerate((one.base, two.base, one.base)):
                async with http(base) as client:
                    await comment(client, alice, post["id"], f"via {n}")
            for ws in (on_one, on_two):
                got = [(await ws.next("c"))["commentAdded"]["comment"]["body"] for _ in range(3)]
                assert got == ["via 0", "via 1", "via 2"]
                await ws.nothing_more("c", 0.5)


@postgresql_only
async def test_a_lost_listener_reconnects_and_fills_the_gap_from_the_trail(
    live_server: LiveServer, served_database: Database
) -> None:
    """Polling is off in practice (an hour): only the LISTEN connection, made again, and
    the read that follows it bring the comment written while it was gone."""
    alice = await make_person(served_database, "alice")
    with live_server(AUDITQL_LIVE_POLL_SECONDS="3600") as server:
        async with http(server.base) as client, subscriber(server.base) as ws:
            post = await create_post(client, alice, publish=True, title="Listening")
            await ws.subscribe("c", COMMENTS, post=post["id"])
            await running(server.base, 1)
            async with served_database.engine.connect() as connection:
                await connection.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN%' AND datname = current_database()"
                )
            await comment(client, alice, post["id"], "while deaf")
            event = (await ws.next("c", within=15))["commentAdded"]
            assert event["comment"]["body"] == "while deaf"


async def test_drafts_reach_only_their_author_and_superusers(
    live_server: LiveServer, served_database: Database
) -> None:
    alice = await make_person(served_database, "alice")
    bob = await make_person(served_database, "bob")
    with live_server() as server:
        async with http(server.base) as client:
            post = await create_post(client, alice, title="Draft")
            await settled()
            async with (
                subscriber(server.base, alice.token) as author,
                subscriber(server.base, bob.token) as reader,
            ):
                await author.subscribe("n", CHANGES, id=post["id"])
                await author.subscribe("c", COMMENTS, post=post["id"])
                await reader.subscribe("n", CHANGES, id=post["id"])
                await reader.subscribe("c", COMMENTS, post=post["id"])
                for refused in (await reader.message("n"), await reader.message("c")):
                    assert refused["type"] == "error", refused
                    assert refused["payload"][0]["extensions"]["code"] == "NOT_FOUND"
                await running(server.base, 2)
                await succeed(client, alice, "updatePost", id=post["id"], title="Still a draft")
                await comment(client, alice, post["id"], "draft note")
                assert (await author.next("n"))["nodeChanged"]["node"]["title"] == "Still a draft"
                assert (await author.next("c"))["commentAdded"]["comment"]["body"] == "draft note"


async def test_a_superuser_demoted_mid_subscription_stops_receiving(
    live_server: LiveServer, served_database: Database
) -> None:
    admin = await make_person(served_database, "admin", superuser=True)
    with live_server(AUDITQL_LIVE_RECHECK_SECONDS="0.2") as server:
        async with http(server.base) as client, subscriber(server.base, admin.token) as ws:
            await ws.subscribe("a", AUDIT)
            await running(server.base, 1)
            await succeed(client, admin, "createTag", name="before")
            assert (await ws.next("a"))["auditEvents"]["entityType"] == "tags"
            async with UnitOfWork(served_database, AuditContext(admin.user.id)) as uow:
                demoted = await uow.session.get_one(User, admin.user.id)
                demoted.is_superuser = False
            await asyncio.sleep(1.5)  # a token check (every 0.2 s) sees it
            async with UnitOfWork(served_database, AuditContext(admin.user.id)) as uow:
                await add_post(uow, title="After")
            ended = await ws.message("a")
            while ended["type"] == "next" and "errors" not in ended["payload"]:
                # The demotion's own entry: sent before the token check saw it.
                assert ended["payload"]["data"]["auditEvents"]["entityType"] == "users", ended
                ended = await ws.message("a")
    errors = ended["payload"] if ended["type"] == "error" else ended["payload"]["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"]


async def test_sign_in_is_refused_alike_and_a_revoked_token_stops_the_connection(
    live_server: LiveServer, served_database: Database
) -> None:
    alice = await make_person(served_database, "alice")
    with live_server(AUDITQL_LIVE_RECHECK_SECONDS="0.5") as server:
        refusals = set()
        for bad in ("Bearer nope", "Basic abc", alice.token):  # the last: no scheme
            async with subscriber(server.base, init=False) as ws:
                init = {"type": "connection_init", "payload": {"Authorization": bad}}
                await ws.connection.send(json.dumps(init))
                await ws.closed()
                refusals.add((ws.connection.close_code, ws.connection.close_reason))
        assert refusals == {(4403, "The token is invalid, expired or revoked.")}

        async with http(server.base) as client, subscriber(server.base, alice.token) as ws:
            post = await create_post(client, alice, publish=True, title="Revoked")
            await ws.subscribe("c", COMMENTS, post=post["id"])
            await running(server.base, 1)
            async with UnitOfWork(served_database, AuditContext(alice.user.id)) as uow:
                [token] = await uow.session.scalars(
                    select(ApiToken).where(ApiToken.user_id == alice.user.id)
                )
                token.revoked_at = utcnow()
            assert await ws.closed(within=5) == 4403


async def test_limits_refuse_what_exceeds_them(
    live_server: LiveServer, served_database: Database
) -> None:
    alice = await make_person(served_database, "alice")
    limits = {
        "AUDITQL_WS_MAX_SUBSCRIPTIONS_PER_CONNECTION": "2",
        "AUDITQL_WS_INIT_TIMEOUT_SECONDS": "0.5",
        "AUDITQL_WS_MAX_MESSAGE_BYTES": "2048",
        "AUDITQL_MAX_QUERY_DEPTH": "5",
    }
    with live_server(**limits) as server:
        async with http(server.base) as client:
            post = await create_post(client, alice, publish=True, title="Limited")
        async with subscriber(server.base, alice.token) as ws:
            for n in range(3):
                await ws.subscribe(str(n), COMMENTS, post=post["id"])
            refused = await ws.message("2")
            assert refused["type"] == "error"
            assert refused["payload"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
        async with subscriber(server.base, alice.token) as ws:
            await ws.subscribe("deep", "subscription($p: ID!) { commentAdded(postId: $p) { comment "
                               "{ post { comments { edges { node { post { title } } } } } } } }",
                               p=post["id"])  # fmt: skip
            deep = await ws.message("deep")
            assert deep["type"] == "error"
            assert deep["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
            await ws.subscribe("q", "{ viewer { username } }")  # a query: HTTP's job
            query = await ws.message("q")
            assert query["type"] == "error"
            assert query["payload"][0]["extensions"]["code"] == "BAD_REQUEST"
        async with subscriber(server.base, init=False) as silent:
            assert await silent.closed() == 4408
        async with subscriber(server.base, alice.token) as large:
            await large.subscribe("big", COMMENTS, post="x" * 4096)
            assert await large.closed() == 1009


async def test_a_subscriber_that_falls_behind_is_closed_to_resume_by_cursor(
    live_server: LiveServer, served_database: Database
) -> None:
    """A buffer of one event: the three entries of one commit (a post and its two tags)
    overflow it at once."""
    admin = await make_person(served_database, "admin", superuser=True)
    with live_server(AUDITQL_WS_BUFFER_EVENTS="1") as server:
        async with http(server.base) as client, subscriber(server.base, admin.token) as ws:
            tags = [await succeed(client, admin, "createTag", name=n) for n in ("a", "b")]
            await ws.subscribe("a", AUDIT)
            # Not `running`: the tags' own entries may reach it first and overflow it.
            await asyncio.sleep(0.5)
            await create_post(client, admin, title="Tagged", tagIds=[t["id"] for t in tags])
            assert await ws.closed() == 1013
            metrics = (await client.http.get("/metrics")).text
    assert "auditql_live_events_dropped_total" in metrics


async def test_sigterm_closes_subscriptions_with_service_restart(
    live_server: LiveServer, served_database: Database
) -> None:
    alice = await make_person(served_database, "alice")
    with live_server(AUDITQL_SHUTDOWN_GRACE_SECONDS="5") as server:
        async with http(server.base) as client:
            post = await create_post(client, alice, publish=True, title="Restarting")
            metrics_before = (await client.http.get("/metrics")).text
        async with subscriber(server.base) as ws:
            await ws.subscribe("c", COMMENTS, post=post["id"])
            await running(server.base, 1)
            async with http(server.base) as client:
                metrics = (await client.http.get("/metrics")).text
            os.kill(server.process.pid, signal.SIGTERM)
            assert await ws.closed(within=5) == 1012
    assert "auditql_live_subscriptions 0.0" in metrics_before
    assert "auditql_live_subscriptions 1.0" in metrics
    assert "auditql_live_connections 1.0" in metrics


async def test_only_graphql_transport_ws_is_spoken(live_server: LiveServer) -> None:
    """The legacy graphql-ws protocol (whose connection_init could be skipped before
    strawberry 0.312.3, CVE-2026-35523) is not offered; HTTP runs no subscription."""
    with live_server() as server:
        url = server.base.replace("http://", "ws://") + "/graphql"
        async with websockets.connect(url, subprotocols=["graphql-ws"]) as legacy:  # type: ignore[list-item]
            with pytest.raises(websockets.ConnectionClosed):
                await legacy.recv()
            assert legacy.close_code == 4406
        async with websockets.connect(url, subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": AUDIT}}))
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 4401  # no operation before connection_init
        async with http(server.base) as client:
            over_http = await client.post(AUDIT)
    assert over_http.status_code == 400
    assert over_http.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_a_token_s_subscriptions_are_counted_over_its_connections(
    live_server: LiveServer, served_database: Database
) -> None:
    alice = await make_person(served_database, "alice")
    with live_server(AUDITQL_WS_MAX_SUBSCRIPTIONS_PER_TOKEN="2") as server:
        async with http(server.base) as client:
            post = await create_post(client, alice, publish=True, title="Counted")
        async with (
            subscriber(server.base, alice.token) as one,
            subscriber(server.base, alice.token) as two,
        ):
            await one.subscribe("a", COMMENTS, post=post["id"])
            await one.subscribe("b", CHANGES, id=post["id"])
            await running(server.base, 2)
            await two.subscribe("c", COMMENTS, post=post["id"])
            refused = await two.message("c")
    assert refused["type"] == "error"
    assert refused["payload"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"


async def test_idle_connections_close_and_handshakes_spend_the_rate_limit(
    live_server: LiveServer,
) -> None:
    env = {"AUDITQL_WS_IDLE_TIMEOUT_SECONDS": "1", "AUDITQL_RATE_LIMIT_PER_ADDRESS": "2/minute"}
    with live_server(**env) as server:
        async with subscriber(server.base) as idle:
            assert await idle.closed(within=5) == 1000
        async with subscriber(server.base):
            pass
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with subscriber(server.base):
                pass
    assert refused.value.response.status_code == 429
    assert json.loads(refused.value.response.body)["errors"][0]["extensions"]["code"] == (
        "RATE_LIMITED"
    )
