"""Races on PostgreSQL, through HTTP: exactly one writer wins, the rest get typed errors,
and the audit log records only what happened."""

from __future__ import annotations

import asyncio

import pytest

from persistence.engine import Database
from tests.gql.conftest import Person
from tests.support.audit import audit_entries
from tests.support.graphql import GraphQLClient

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

RACERS = 20


async def test_concurrent_updates_with_one_expected_version_let_exactly_one_win(
    client: GraphQLClient, app_database: Database, alice: Person
) -> None:
    created = await client.execute(
        'mutation { createPost(input: {title: "Race"}) { ... on PostSuccess { post { id } } } }',
        token=alice.token,
    )
    post_id = created["createPost"]["post"]["id"]
    update = """mutation($input: UpdatePostInput!) { updatePost(input: $input) {
      __typename ... on PostSuccess { post { version } }
      ... on ConflictError { currentVersion } } }"""

    results = await asyncio.gather(*(
        client.execute(update, {"input": {"id": post_id, "title": f"Racer {n}",
                                          "expectedVersion": 1}}, token=alice.token)
        for n in range(RACERS)
    ))  # fmt: skip
    outcomes = [r["updatePost"] for r in results]
    assert sorted(o["__typename"] for o in outcomes) == ["ConflictError"] * 19 + ["PostSuccess"]
    assert {o["currentVersion"] for o in outcomes if "currentVersion" in o} == {2}
    final = await client.execute(
        "query($id: ID!) { node(id: $id) { ... on Post { version } } }", {"id": post_id},
        token=alice.token,
    )  # fmt: skip
    assert final["node"]["version"] == 2
    entries = await audit_entries(app_database)
    assert [e.action for e in entries if e.entity_type == "posts"] == ["create", "update"]


async def test_concurrent_creates_of_one_unique_name_make_one_row(
    client: GraphQLClient, app_database: Database, admin: Person
) -> None:
    create = """mutation { createTag(input: {name: "contested"}) {
      __typename ... on AlreadyExistsError { field } } }"""
    results = await asyncio.gather(
        *(client.execute(create, token=admin.token) for _ in range(RACERS))
    )
    outcomes = sorted(r["createTag"]["__typename"] for r in results)
    assert outcomes == ["AlreadyExistsError"] * 19 + ["TagSuccess"]
    assert {r["createTag"].get("field") for r in results} == {None, "name"}
    tags = await client.execute("{ tags { totalCount } }")
    assert tags["tags"]["totalCount"] == 1
    entries = await audit_entries(app_database)
    assert [e.action for e in entries if e.entity_type == "tags"] == ["create"]
