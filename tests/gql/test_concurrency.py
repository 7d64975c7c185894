"""Races through two real ``auditql serve`` processes on one PostgreSQL database, 20
clients at once over their own HTTP connections, taking turns between the two processes
(so ten race within each, and the two race each other): exactly one writer wins, the
rest get typed errors, and the audit log records only what happened. Slugs are one such
race: a post's slug is unique among live posts, and when ``createPost`` makes it from the
title, one title means one slug, so twenty posts with one title make one post (the API
does not number duplicates)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from persistence.engine import Database
from tests.gql.conftest import make_person, served_env
from tests.support.audit import audit_entries
from tests.support.graphql import GraphQLClient
from tests.support.server import serving

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

RACERS = 20
CREATE_POST = """mutation($input: CreatePostInput!) { createPost(input: $input) {
  __typename ... on PostSuccess { post { id } } ... on AlreadyExistsError { field } } }"""


@pytest.fixture
async def servers(database_url: str, tmp_path: Path) -> AsyncIterator[list[GraphQLClient]]:
    """Clients of two ``auditql serve`` processes on this test's database (as
    ``live_server`` starts one, each with its own log), with a connection for every
    racer."""
    env = served_env(database_url)
    limits = httpx.Limits(max_connections=RACERS, max_keepalive_connections=RACERS)
    async with AsyncExitStack() as stack:
        clients = []
        for name in ("one", "two"):
            server = stack.enter_context(serving(env, tmp_path / f"{name}.log", "--no-migrate"))
            http = httpx.AsyncClient(base_url=server.base, limits=limits, timeout=30)
            clients.append(GraphQLClient(await stack.enter_async_context(http)))
        yield clients


@pytest.fixture
def served(servers: list[GraphQLClient]) -> GraphQLClient:
    """The first process, to arrange the race and look at its outcome."""
    return servers[0]


async def race(
    servers: list[GraphQLClient],
    document: str,
    variables: Callable[[int], dict[str, Any]],
    token: str,
) -> list[dict[str, Any]]:
    """The ``data`` of RACERS copies of one operation sent at once, taking turns
    between the processes."""
    return list(await asyncio.gather(*(
        servers[n % len(servers)].execute(document, variables(n), token=token)
        for n in range(RACERS)
    )))  # fmt: skip


async def test_concurrent_updates_with_one_expected_version_let_exactly_one_win(
    servers: list[GraphQLClient], served: GraphQLClient, served_database: Database
) -> None:
    alice = await make_person(served_database, "alice")
    created = await served.execute(CREATE_POST, {"input": {"title": "Race"}}, token=alice.token)
    post_id = created["createPost"]["post"]["id"]
    update = """mutation($input: UpdatePostInput!) { updatePost(input: $input) {
      __typename ... on PostSuccess { post { version } }
      ... on ConflictError { currentVersion } } }"""

    results = await race(servers, update, lambda n: {"input": {
        "id": post_id, "title": f"Racer {n}", "expectedVersion": 1}}, alice.token)  # fmt: skip

    outcomes = [r["updatePost"] for r in results]
    assert sorted(o["__typename"] for o in outcomes) == ["ConflictError"] * 19 + ["PostSuccess"]
    assert {o["currentVersion"] for o in outcomes if "currentVersion" in o} == {2}
    final = await served.execute(
        "query($id: ID!) { node(id: $id) { ... on Post { version } } }", {"id": post_id},
        token=alice.token,
    )  # fmt: skip
    assert final["node"]["version"] == 2
    entries = await audit_entries(served_database)
    assert [e.action for e in entries if e.entity_type == "posts"] == ["create", "update"]


async def test_concurrent_creates_of_one_unique_name_make_one_row(
    servers: list[GraphQLClient], served: GraphQLClient, served_database: Database
) -> None:
    admin = await make_person(served_database, "admin", superuser=True)
    create = """mutation { createTag(input: {name: "contested"}) {
      __typename ... on AlreadyExistsError { field } } }"""

    results = await race(servers, create, lambda _: {}, admin.token)

    outcomes = sorted(r["createTag"]["__typename"] for r in results)
    assert outcomes == ["AlreadyExistsError"] * 19 + ["TagSuccess"]
    assert {r["createTag"].get("field") for r in results} == {None, "name"}
    tags = await served.execute("{ tags { totalCount } }")
    assert tags["tags"]["totalCount"] == 1
    entries = await audit_entries(served_database)
    assert [e.action for e in entries if e.entity_type == "tags"] == ["create"]


@pytest.mark.parametrize(
    "post",
    [lambda n: {"title": "Contested"}, lambda n: {"title": f"Racer {n}", "slug": "contested"}],
    ids=["slug-from-the-title", "slug-given"],
)
async def test_concurrent_creates_of_one_slug_make_one_post(
    servers: list[GraphQLClient],
    served: GraphQLClient,
    served_database: Database,
    post: Callable[[int], dict[str, str]],
) -> None:
    alice = await make_person(served_database, "alice")

    results = await race(servers, CREATE_POST, lambda n: {"input": post(n)}, alice.token)

    outcomes = [r["createPost"] for r in results]
    typenames = sorted(o["__typename"] for o in outcomes)
    assert typenames == ["AlreadyExistsError"] * 19 + ["PostSuccess"]
    assert {o.get("field") for o in outcomes} == {None, "slug"}
    [winner] = [o["post"]["id"] for o in outcomes if "post" in o]
    found = await served.execute(
        '{ post(slug: "contested") { id } posts { totalCount } }', token=alice.token
    )
    assert found == {"post": {"id": winner}, "posts": {"totalCount": 1}}
    entries = await audit_entries(served_database)
    assert [e.action for e in entries if e.entity_type == "posts"] == ["create"]
