"""Erasing a person over the API and from the command line: their values read
``[erased]`` in the audit log and in histories, everyone else's are untouched, and the
erasure is an entry of its own."""

from __future__ import annotations

import asyncio
import base64
import os
from typing import Any

import pytest
from sqlalchemy import select

from gql.schema.ids import to_global_id
from gql.settings import Settings
from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.keyring import KeyRing
from persistence.models.audit_chain import AuditChainLink
from persistence.personal import ERASED
from persistence.unit_of_work import UnitOfWork
from tests.conftest import TEST_KEKS
from tests.factories.post import create_post
from tests.gql.conftest import Person, make_person
from tests.gql.test_cli import auditql
from tests.support.audit import opened_entries
from tests.support.audit_chain import sequence, verified
from tests.support.graphql import GraphQLClient, codes
from tests.support.statements import count_statements

ERASE = """mutation($id: ID!) { eraseUser(input: {userId: $id}) {
  __typename
  ... on UserSuccess { user { id username fullName isActive } }
  ... on Error { code message field } } }"""
UPDATE_NAME = """mutation($id: ID!, $name: String!) {
  updateUser(input: {id: $id, fullName: $name}) { __typename } }"""
CREATE_POST = """mutation($title: String!) {
  createPost(input: {title: $title, body: "Hello."}) {
    __typename ... on PostSuccess { post { id } } } }"""
ENTRY = "action entityType entityId ipAddress userAgent actor { id } changes { field old new }"
AUDIT_LOG = f"{{ auditLog(first: 100) {{ edges {{ node {{ {ENTRY} }} }} }} }}"
HISTORY = f"""query($id: ID!) {{ node(id: $id) {{ ... on Audited {{
  history(first: 50) {{ edges {{ node {{ {ENTRY} }} }} }} }} }} }}"""
ADDRESS = "203.0.113.9"  # the test client's (tests/gql/conftest.py)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Authentication reads the token (and its user's key) on every request, no token
    cache: the statements a write sends are compared with that lookup."""
    return Settings(database_url=database_url, token_cache_seconds=0)


async def log(client: GraphQLClient, admin: Person) -> list[dict[str, Any]]:
    data = await client.execute(AUDIT_LOG, token=admin.token)
    return [edge["node"] for edge in data["auditLog"]["edges"]]


def values(entry: dict[str, Any]) -> dict[str, Any]:
    return {change["field"]: [change["old"], change["new"]] for change in entry["changes"]}


async def test_an_erased_person_reads_erased_everywhere_and_no_one_else_does(
    client: GraphQLClient, app_database: Database, admin: Person, alice: Person, bob: Person
) -> None:
    for person in (alice, bob):
        await client.execute(UPDATE_NAME, {"id": person.id, "name": "Renamed"}, token=person.token)
    post = (await client.execute(CREATE_POST, {"title": "Mine"}, token=alice.token))["createPost"]

    erased = (await client.execute(ERASE, {"id": alice.id}, token=admin.token))["eraseUser"]

    assert erased == {"__typename": "UserSuccess", "user": {
        "id": alice.id, "username": f"erased-{alice.user.id}", "fullName": "", "isActive": False,
    }}  # fmt: skip
    entries = await log(client, admin)
    by_alice = [e for e in entries if e["actor"] == {"id": alice.id}]
    about_alice = [e for e in entries if e["entityId"] == alice.id]
    assert len(by_alice) == 2  # her rename and her post
    assert {(e["ipAddress"], e["userAgent"]) for e in by_alice} == {(ERASED, ERASED)}
    personal = ("email", "username", "fullName")
    for entry in about_alice:
        assert {f: v for f, v in values(entry).items() if f in personal} == {
            f: [None if entry["action"] == "CREATE" else ERASED, ERASED]
            for f in personal
            if f in values(entry)
        }
    assert [e["action"] for e in about_alice] == ["ERASE", "UPDATE", "CREATE"]
    erase = about_alice[0]
    assert (erase["actor"], erase["ipAddress"]) == ({"id": admin.id}, ADDRESS)
    assert values(erase)["isActive"] == [True, False]
    [post_entry] = [e for e in by_alice if e["entityType"] == "posts"]
    assert values(post_entry)["title"] == [None, "Mine"]  # content is not personal

    [bobs] = [e for e in entries if e["actor"] == {"id": bob.id}]
    assert (bobs["ipAddress"], values(bobs)["fullName"]) == (ADDRESS, ["Bob", "Renamed"])
    history = await client.execute(HISTORY, {"id": post["post"]["id"]}, token=admin.token)
    [created] = [edge["node"] for edge in history["node"]["history"]["edges"]]
    assert created["ipAddress"] == ERASED
    assert codes(await client.errors("{ viewer { id } }", token=alice.token)) == ["UNAUTHENTICATED"]


async def test_a_page_of_entries_loads_its_keys_in_one_statement(
    client: GraphQLClient, app_database: Database, admin: Person, alice: Person, bob: Person
) -> None:
    for person in (alice, bob, admin):
        await client.execute(UPDATE_NAME, {"id": person.id, "name": "Renamed"}, token=person.token)
    with count_statements(app_database) as statements:
        entries = await log(client, admin)
    assert len({e["actor"]["id"] for e in entries if e["actor"]}) == 3
    assert len([s for s in statements if "user_keys" in s]) == 2  # the token's, the page's


async def test_create_post_reads_no_key_beyond_the_token_lookup(
    client: GraphQLClient, app_database: Database, alice: Person
) -> None:
    await client.execute(CREATE_POST, {"title": "Warm"}, token=alice.token)  # token last used
    with count_statements(app_database) as statements:
        await client.execute(CREATE_POST, {"title": "Counted"}, token=alice.token)
    [lookup] = [s for s in statements if "user_keys" in s]
    assert "api_tokens" in lookup  # one statement finds the token, its user and the key
    [entry] = [
        e
        for e in await opened_entries(app_database)
        if e.changes.get("title", [0, 0])[1] == "Counted"
    ]
    assert entry.ip_address == ADDRESS


async def test_erasure_refusals_are_typed_errors(
    client: GraphQLClient, admin: Person, alice: Person, bob: Person
) -> None:
    await client.execute(ERASE, {"id": bob.id}, token=admin.token)
    unknown = to_global_id("User", 10**6)

    results = [
        (await client.execute(ERASE, {"id": target}, token=caller.token))["eraseUser"]
        for caller, target in [(admin, admin.id), (admin, bob.id), (admin, unknown),
                               (alice, admin.id)]
    ]  # fmt: skip

    assert [(r["__typename"], r["field"]) for r in results] == [
        ("ValidationError", "userId"),  # yourself
        ("ValidationError", "userId"),  # twice
        ("NotFoundError", None),
        ("ForbiddenError", None),
    ]
    assert codes(await client.errors(ERASE, {"id": bob.id})) == ["UNAUTHENTICATED"]


async def test_the_command_line_erases_and_rotates_keys(
    database_url: str, served_database: Database
) -> None:
    ada = await make_person(served_database, "ada")
    async with UnitOfWork(served_database, AuditContext(ada.user.id, ip_address=ADDRESS)) as uow:
        await create_post(uow, title="Ada's")
    env = {"AUDITQL_DATABASE_URL": database_url}

    erased = await asyncio.to_thread(auditql, "erase-user", str(ada.user.id), env=env)
    again = await asyncio.to_thread(auditql, "erase-user", str(ada.user.id), env=env)

    assert (erased.returncode, erased.stdout) == (
        0,
        f"erased user {ada.user.id} (now erased-{ada.user.id})\n",
    )
    assert (again.returncode, again.stderr) == (1, "error: This user is erased already.\n")
    entries = await opened_entries(served_database)
    assert [e.ip_address for e in entries if e.entity_type == "posts"] == [ERASED]
    erase = [e for e in entries if e.action == "erase"]
    assert [(e.actor_id, e.ip_address, e.changes["email"]) for e in erase] == [
        (None, None, [ERASED, ERASED])
    ]

    # A new KEK in front: rotation re-wraps the remaining keys under it.
    kek = base64.b64encode(os.urandom(32)).decode()
    bob = await make_person(served_database, "bob")
    rotate_env = {**env, "AUDITQL_AUDIT_KEKS": f"new:{kek},{TEST_KEKS}"}
    rotated = await asyncio.to_thread(auditql, "rotate-audit-keys", env=rotate_env)
    assert rotated.stdout == "re-wrapped 1 keys under the first key of AUDITQL_AUDIT_KEKS\n"
    only_new = Database(served_database.engine, served_database.reader, served_database.writer,
                        keys=KeyRing.parse(f"new:{kek}"))  # fmt: skip
    [bobs] = await opened_entries(only_new, bob.user.id)
    assert bobs.changes["email"] == [None, "bob@example.com"]


async def test_erasure_leaves_the_chain_verifying_and_its_links_unchanged(
    client: GraphQLClient, app_database: Database, settings: Settings, admin: Person, alice: Person
) -> None:
    """The chain covers the sealed values: destroying the key changes no byte of it."""
    await client.execute(UPDATE_NAME, {"id": alice.id, "name": "Renamed"}, token=alice.token)
    await sequence(settings)
    before = await links(app_database)

    await client.execute(ERASE, {"id": alice.id}, token=admin.token)
    await sequence(settings)

    after = await links(app_database)
    assert after[: len(before)] == before
    assert len(after) > len(before)  # the erasure's own entries, chained after
    report = await verified(app_database, settings)
    assert report.ok, report.problems


async def links(database: Database) -> list[tuple[int, bytes, bytes]]:
    async with database.engine.connect() as connection:
        rows = await connection.execute(
            select(
                AuditChainLink.position, AuditChainLink.entry_hash, AuditChainLink.chain_hash
            ).order_by(AuditChainLink.position)
        )
        return [(position, bytes(entry), bytes(chain)) for position, entry, chain in rows]
