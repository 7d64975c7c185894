"""Rate limits through a real server on PostgreSQL: per token, per anonymous address,
and on failed sign-ins; 429 with RATE_LIMITED and Retry-After; client addresses from
proxy headers only when the proxy is trusted; counters shared through Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from gql.cli import admin
from gql.settings import Settings
from persistence.engine import Database
from tests.gql.conftest import LiveServer, Person, make_person
from tests.support.audit import opened_entries

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

VIEWER = {"query": "{ viewer { username } }"}
TAGS = {"query": "{ tags { totalCount } }"}
LOGIN = """mutation($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) { __typename } }"""


def bearer(person: Person) -> dict[str, str]:
    return {"Authorization": f"Bearer {person.token}"}


def assert_rate_limited(response: httpx.Response, *, longest: int) -> None:
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= longest
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] == retry_after
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]


async def test_a_token_over_its_budget_is_refused_while_other_tokens_are_not(
    live_server: LiveServer, served_database: Database
) -> None:
    alice, bob = (
        await make_person(served_database, "alice"),
        await make_person(served_database, "bob"),
    )
    with live_server(AUDITQL_RATE_LIMIT_PER_TOKEN="5/minute") as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            admitted = [await http.post("/graphql", json=VIEWER, headers=bearer(alice))
                        for _ in range(5)]  # fmt: skip
            assert [r.status_code for r in admitted] == [200] * 5
            # Alice keeps hammering; Bob's requests go through meanwhile.
            hammering = [http.post("/graphql", json=VIEWER, headers=bearer(alice))
                         for _ in range(50)]  # fmt: skip
            bobs = [http.post("/graphql", json=VIEWER, headers=bearer(bob)) for _ in range(5)]
            refused = await asyncio.gather(*hammering)
            served = await asyncio.gather(*bobs)
    for response in refused:
        assert_rate_limited(response, longest=60)
    assert [r.json()["data"]["viewer"]["username"] for r in served] == ["bob"] * 5


async def test_anonymous_requests_are_limited_per_address(
    live_server: LiveServer, served_database: Database
) -> None:
    alice = await make_person(served_database, "alice")
    with live_server(AUDITQL_RATE_LIMIT_PER_ADDRESS="3/minute") as server:
        async with httpx.AsyncClient(base_url=server.base) as http:
            anonymous = [(await http.post("/graphql", json=TAGS)) for _ in range(4)]
            signed_in = await http.post("/graphql", json=VIEWER, headers=bearer(alice))
    assert [r.status_code for r in anonymous[:3]] == [200] * 3
    assert_rate_limited(anonymous[3], longest=60)
    assert signed_in.json()["data"] == {"viewer": {"username": "alice"}}


@pytest.mark.parametrize(
    ("trusted", "separate"),
    [("127.0.0.1", True), ("192.0.2.200", False)],
    ids=["trusted-proxy", "untrusted-proxy"],
)
async def test_forwarded_addresses_count_only_from_a_trusted_proxy(
    live_server: LiveServer, served_database: Database, trusted: str, separate: bool
) -> None:
    """The test client connects from 127.0.0.1: when that is a trusted proxy, each
    X-Forwarded-For address has its own budget and is what the audit log records; when
    it is not, the header is ignored and every request spends the peer's budget."""
    admin_ = await make_person(served_database, "admin", superuser=True)
    env = {"AUDITQL_TRUST_PROXY_HEADERS": "true", "AUDITQL_TRUSTED_PROXIES": trusted,
           "AUDITQL_RATE_LIMIT_PER_ADDRESS": "2/minute"}  # fmt: skip

    def forwarded(address: str) -> dict[str, str]:
        return {"X-Forwarded-For": address}

    with live_server(**env) as server:
        async with httpx.AsyncClient(base_url=server.base) as http:
            first = [(await http.post("/graphql", json=TAGS, headers=forwarded("198.51.100.1")))
                     for _ in range(2)]  # fmt: skip
            other = await http.post("/graphql", json=TAGS, headers=forwarded("198.51.100.2"))
            await http.post(
                "/graphql",
                json={"query": 'mutation { createTag(input: {name: "t"}) { __typename } }'},
                headers={**bearer(admin_), **forwarded("198.51.100.7")},
            )
    assert [r.status_code for r in first] == [200, 200]
    (entry,) = [e for e in await opened_entries(served_database) if e.entity_type == "tags"]
    if separate:
        assert other.status_code == 200
        assert entry.ip_address == "198.51.100.7"
    else:
        assert_rate_limited(other, longest=60)
        assert entry.ip_address == "127.0.0.1"


async def test_failed_logins_are_throttled_per_address_and_per_account_alike_for_unknown_emails(
    live_server: LiveServer, database_url: str
) -> None:
    settings = Settings(database_url=database_url)
    await admin.create_user(settings, "alice@example.com", "alice", "", "correct horse",
                            superuser=False)  # fmt: skip
    env = {"AUDITQL_SIGN_IN_FAILURE_LIMIT": "3/minute", "AUDITQL_TRUST_PROXY_HEADERS": "true"}

    async def login(http: httpx.AsyncClient, email: str, password: str, address: str) -> Any:
        return await http.post(
            "/graphql",
            json={"query": LOGIN, "variables": {"email": email, "password": password}},
            headers={"X-Forwarded-For": address},
        )

    with live_server(**env) as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            known = [await login(http, "alice@example.com", "wrong", "198.51.100.1")
                     for _ in range(3)]  # fmt: skip
            # The right password no longer helps, from this address or any other.
            locked_here = await login(http, "alice@example.com", "correct horse", "198.51.100.1")
            locked_there = await login(http, "alice@example.com", "correct horse", "198.51.100.9")
            unknown = [await login(http, "nobody@example.com", "wrong", "198.51.100.2")
                       for _ in range(3)]  # fmt: skip
            unknown_locked = await login(http, "nobody@example.com", "wrong", "198.51.100.2")
            elsewhere = await login(http, "alice@example.com", "correct horse", "198.51.100.3")

    def outcome(response: httpx.Response) -> Any:
        body = response.json()
        if "errors" in body:
            return response.status_code, body["errors"][0]["extensions"]["code"]
        return response.status_code, body["data"]["login"]["__typename"]

    failed = (200, "InvalidCredentialsError")
    assert [outcome(r) for r in known] == [outcome(r) for r in unknown] == [failed] * 3
    for response in (locked_here, locked_there, unknown_locked):
        assert_rate_limited(response, longest=60)
    # Alice's account stays locked for the window, from a fresh address too.
    assert outcome(elsewhere) == (429, "RATE_LIMITED")


async def test_rejected_tokens_spend_the_address_sign_in_budget(
    live_server: LiveServer, served_database: Database
) -> None:
    alice = await make_person(served_database, "alice")
    with live_server(AUDITQL_SIGN_IN_FAILURE_LIMIT="3/minute") as server:
        async with httpx.AsyncClient(base_url=server.base) as http:
            guesses = [
                await http.post("/graphql", json=VIEWER,
                                headers={"Authorization": f"Bearer aq_guess{n}"})
                for n in range(3)
            ]  # fmt: skip
            after = await http.post("/graphql", json=VIEWER, headers=bearer(alice))
    assert [r.status_code for r in guesses] == [401] * 3
    assert_rate_limited(after, longest=60)


async def test_processes_sharing_redis_share_one_budget(
    live_server: LiveServer, served_database: Database, redis_url: str
) -> None:
    alice = await make_person(served_database, "alice")
    env = {"AUDITQL_RATE_LIMIT_STORAGE": redis_url, "AUDITQL_RATE_LIMIT_PER_TOKEN": "6/minute"}
    with live_server(**env) as one, live_server(**env) as two:
        async with httpx.AsyncClient() as http:
            statuses = [
                (await http.post(f"{server.base}/graphql", json=VIEWER, headers=bearer(alice)))
                for server in (one, two) * 3
            ]
            refused = await http.post(f"{two.base}/graphql", json=VIEWER, headers=bearer(alice))
    assert [r.status_code for r in statuses] == [200] * 6
    assert_rate_limited(refused, longest=60)


async def test_an_unreachable_shared_store_lets_requests_through_and_says_so(
    live_server: LiveServer, served_database: Database, tmp_path: Path
) -> None:
    alice = await make_person(served_database, "alice")
    env = {"AUDITQL_RATE_LIMIT_STORAGE": "redis://127.0.0.1:9/0",  # discard port: closed
           "AUDITQL_RATE_LIMIT_PER_TOKEN": "5/minute"}  # fmt: skip
    with live_server(**env) as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            response = await http.post("/graphql", json=VIEWER, headers=bearer(alice))
    assert response.json()["data"] == {"viewer": {"username": "alice"}}
    assert "rate limit storage failed; request let through" in (tmp_path / "server.log").read_text()
