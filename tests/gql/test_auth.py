"""Signing in and API tokens over HTTP: what works, and what fails the same way."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gql.schema.ids import to_global_id
from persistence.audit import AuditContext
from persistence.base import utcnow
from persistence.engine import Database
from persistence.models import ApiToken, User
from persistence.repositories.api_token import ApiTokenRepository
from persistence.repositories.user import UserRepository
from persistence.security import hash_password, new_token
from persistence.unit_of_work import UnitOfWork
from tests.gql.conftest import Person
from tests.support.audit import audit_entries
from tests.support.graphql import GraphQLClient, codes, without_request_ids

PASSWORD = "correct horse battery staple"
VIEWER = "{ viewer { username } }"
LOGIN = """mutation($input: LoginInput!) { login(input: $input) {
  __typename
  ... on TokenSuccess { token user { username } apiToken { name expiresAt } }
  ... on Error { code message } } }"""
CREATE_TOKEN = """mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) {
  __typename
  ... on TokenSuccess { token apiToken { id name prefix expiresAt revokedAt } }
  ... on ValidationError { code field } } }"""
REVOKE_TOKEN = """mutation($input: RevokeApiTokenInput!) { revokeApiToken(input: $input) {
  __typename ... on RevokeApiTokenSuccess { apiToken { id revokedAt } } ... on Error { code } } }"""
API_TOKENS = "{ apiTokens { totalCount edges { node { id name prefix lastUsedAt } } } }"


async def update_user(database: Database, user: User, **values: Any) -> None:
    async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
        users = UserRepository(uow.session)
        await users.update(await users.get_or_raise(user.id), values)


async def tokens_of(database: Database, user: User) -> list[ApiToken]:
    async with database.reader() as session:
        return list(await ApiTokenRepository(session).list(user_id=user.id))


async def add_token(database: Database, user: User, **values: Any) -> str:
    token = new_token()
    async with UnitOfWork(database, AuditContext(actor_id=user.id)) as uow:
        await ApiTokenRepository(uow.session).add(
            ApiToken(user_id=user.id, name="arranged", token_hash=token.hash,
                     prefix=token.prefix, **values)
        )  # fmt: skip
    return token.secret


async def raw(
    client: GraphQLClient, headers: dict[str, str], url: str = "/graphql"
) -> httpx.Response:
    return await client.http.post(url, json={"query": VIEWER}, headers=headers)


async def login(client: GraphQLClient, email: str, password: str) -> dict[str, Any]:
    variables = {"input": {"email": email, "password": password}}
    return dict((await client.execute(LOGIN, variables))["login"])


async def login_escaped(client: GraphQLClient, email: str, password: str) -> dict[str, Any]:
    """``login`` with the body encoded by ``json.dumps``, which escapes what httpx cannot
    encode (a lone surrogate becomes ``\\ud800``, as a JavaScript client sends it)."""
    variables = {"input": {"email": email, "password": password}}
    response = await client.http.post(
        "/graphql", content=json.dumps({"query": LOGIN, "variables": variables}),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    return dict(response.json()["data"]["login"])


async def viewer_of(client: GraphQLClient, token: str) -> str | None:
    viewer = (await client.execute(VIEWER, token=token))["viewer"]
    return None if viewer is None else str(viewer["username"])


# -- login --------------------------------------------------------------------------------


async def test_login_issues_a_working_bearer_token(
    client: GraphQLClient, app_database: Database, alice: Person
) -> None:
    await update_user(app_database, alice.user, password_hash=hash_password(PASSWORD))
    result = await login(client, "  ALICE@example.com ", PASSWORD)
    assert result["__typename"] == "TokenSuccess"
    assert result["user"] == {"username": "alice"}
    assert result["apiToken"]["name"] == "login"
    assert result["apiToken"]["expiresAt"] is not None  # login tokens expire
    assert await viewer_of(client, result["token"]) == "alice"


async def test_every_failed_login_looks_the_same(
    client: GraphQLClient, app_database: Database, alice: Person, bob: Person
) -> None:
    await update_user(app_database, alice.user, password_hash=hash_password(PASSWORD))
    async with UnitOfWork(app_database, AuditContext(actor_id=None)) as uow:
        await UserRepository(uow.session).add(
            User(email="carol@example.com", username="carol", is_active=False,
                 password_hash=hash_password(PASSWORD))
        )  # fmt: skip
    tokens_before = len(await tokens_of(app_database, alice.user))

    failures = [
        await login(client, "alice@example.com", PASSWORD + "!"),  # wrong password
        await login(client, "nobody@example.com", PASSWORD),  # unknown email
        await login(client, "carol@example.com", PASSWORD),  # deactivated
        await login(client, "bob@example.com", ""),  # no password at all
        await login(client, "bob@example.com", PASSWORD),
        await login_escaped(client, "alice@example.com", "a\ud800b"),  # no password can be
    ]
    assert (failures[0]["__typename"], failures[0]["code"]) == (
        "InvalidCredentialsError", "INVALID_CREDENTIALS",
    )  # fmt: skip
    assert all(failure == failures[0] for failure in failures)
    assert len(await tokens_of(app_database, alice.user)) == tokens_before


# -- API tokens -----------------------------------------------------------------------------


async def test_created_api_tokens_work_and_only_their_hash_is_stored(
    client: GraphQLClient, app_database: Database, alice: Person
) -> None:
    variables = {"input": {"name": "ci", "expiresInDays": 7}}
    result = (await client.execute(CREATE_TOKEN, variables, token=alice.token))["createApiToken"]
    assert result["__typename"] == "TokenSuccess"
    secret = result["token"]
    assert secret.startswith("aq_")
    assert len(secret) >= 3 + 43  # 32 random bytes, base64
    assert result["apiToken"]["prefix"] == secret[:9]
    assert await viewer_of(client, secret) == "alice"

    async with app_database.reader() as session:
        rows = (await session.execute(select(ApiToken.__table__))).all()
    assert hashlib.sha256(secret.encode()).hexdigest() in [row.token_hash for row in rows]
    stored = [value for row in rows for value in row if isinstance(value, str)]
    assert stored
    assert not [value for value in stored if secret in value]
    entries = await audit_entries(app_database)
    assert [e.changes["token_hash"] for e in entries if e.entity_type == "api_tokens"][-1] == [
        None, "[redacted]",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("input", "field"),
    [({"name": " "}, "name"), ({"name": "ci", "expiresInDays": 0}, "expiresInDays"),
     ({"name": "ci", "expiresInDays": 366}, "expiresInDays")],
)  # fmt: skip
async def test_create_api_token_validates_input(
    client: GraphQLClient, alice: Person, input: dict[str, Any], field: str
) -> None:
    result = await client.execute(CREATE_TOKEN, {"input": input}, token=alice.token)
    assert result["createApiToken"] == {"__typename": "ValidationError",
                                        "code": "VALIDATION_FAILED", "field": field}  # fmt: skip
    assert codes(await client.errors(CREATE_TOKEN, {"input": input})) == ["UNAUTHENTICATED"]


async def test_revoked_tokens_stop_working_at_once(client: GraphQLClient, alice: Person) -> None:
    made = await client.execute(CREATE_TOKEN, {"input": {"name": "temp"}}, token=alice.token)
    secret, token_id = made["createApiToken"]["token"], made["createApiToken"]["apiToken"]["id"]
    assert await viewer_of(client, secret) == "alice"
    result = await client.execute(REVOKE_TOKEN, {"input": {"id": token_id}}, token=alice.token)
    assert result["revokeApiToken"]["apiToken"]["revokedAt"] is not None
    assert (await client.post(VIEWER, token=secret)).status_code == 401
    assert await viewer_of(client, alice.token) == "alice"  # other tokens keep working


async def test_expired_tokens_are_rejected(
    client: GraphQLClient, app_database: Database, alice: Person
) -> None:
    expired = await add_token(app_database, alice.user, expires_at=utcnow() - timedelta(seconds=1))
    current = await add_token(app_database, alice.user, expires_at=utcnow() + timedelta(hours=1))
    assert (await client.post(VIEWER, token=expired)).status_code == 401
    assert await viewer_of(client, current) == "alice"


async def test_every_rejected_token_gets_the_same_answer(
    client: GraphQLClient, app_database: Database, admin: Person, alice: Person, bob: Person
) -> None:
    expired = await add_token(app_database, bob.user, expires_at=utcnow() - timedelta(days=1))
    revoked = await add_token(app_database, bob.user, revoked_at=utcnow())
    await update_user(app_database, alice.user, is_active=False)
    responses = [
        await client.post(VIEWER, token=token)
        for token in ("aq_" + "A" * 43, "not-even-a-token", expired, revoked, alice.token)
    ]
    first = responses[0]
    assert first.status_code == 401
    assert first.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    for response in responses:
        assert response.status_code == 401
        assert without_request_ids(response.json()) == without_request_ids(first.json())
        assert response.headers["www-authenticate"] == first.headers["www-authenticate"]


@pytest.mark.parametrize("header", ["Basic x", "Bearer", "Bearer    ", "Token abc", ""])
async def test_malformed_authorization_headers_are_rejected(
    client: GraphQLClient, alice: Person, header: str
) -> None:
    response = await raw(client, {"Authorization": header})
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("parameter", ["access_token", "token"])
async def test_tokens_in_the_query_string_are_ignored(
    client: GraphQLClient, alice: Person, parameter: str
) -> None:
    response = await raw(client, {}, url=f"/graphql?{parameter}={alice.token}")
    assert response.status_code == 200
    assert response.json() == {"data": {"viewer": None}}


async def test_api_tokens_lists_only_your_own(
    client: GraphQLClient, app_database: Database, alice: Person, bob: Person
) -> None:
    await client.execute(CREATE_TOKEN, {"input": {"name": "second"}}, token=alice.token)
    listed = (await client.execute(API_TOKENS, token=alice.token))["apiTokens"]
    tokens = await tokens_of(app_database, alice.user)
    own = {to_global_id("ApiToken", token.id) for token in tokens}
    assert {edge["node"]["id"] for edge in listed["edges"]} == own
    assert [edge["node"]["name"] for edge in listed["edges"]] == ["second", "test"]  # newest first
    assert listed["totalCount"] == 2
    assert codes(await client.errors(API_TOKENS)) == ["UNAUTHENTICATED"]


async def test_revoking_someone_elses_token_is_not_found(
    client: GraphQLClient, app_database: Database, alice: Person, bob: Person
) -> None:
    [bobs] = await tokens_of(app_database, bob.user)
    variables = {"input": {"id": to_global_id("ApiToken", bobs.id)}}
    result = await client.execute(REVOKE_TOKEN, variables, token=alice.token)
    assert result["revokeApiToken"] == {"__typename": "NotFoundError", "code": "NOT_FOUND"}
    assert await viewer_of(client, bob.token) == "bob"


async def test_last_used_at_is_recorded_at_most_every_few_minutes(
    client: GraphQLClient, app_database: Database, alice: Person
) -> None:
    [token] = await tokens_of(app_database, alice.user)
    assert token.last_used_at is None
    entries_before = len(await audit_entries(app_database))

    await viewer_of(client, alice.token)
    [token] = await tokens_of(app_database, alice.user)
    first_use = token.last_used_at
    assert first_use is not None
    assert utcnow() - first_use < timedelta(minutes=1)

    await viewer_of(client, alice.token)
    [token] = await tokens_of(app_database, alice.user)
    assert token.last_used_at == first_use  # throttled: no write per request

    long_ago = utcnow() - timedelta(minutes=10)
    async with UnitOfWork(app_database, AuditContext(actor_id=None)) as uow:
        tokens = ApiTokenRepository(uow.session)
        await tokens.update(await tokens.get_or_raise(token.id), {"last_used_at": long_ago})
    await viewer_of(client, alice.token)
    [token] = await tokens_of(app_database, alice.user)
    assert token.last_used_at is not None
    assert token.last_used_at > first_use
    # Bookkeeping, not a change: it leaves no audit entries behind.
    assert len(await audit_entries(app_database)) == entries_before


async def test_secrets_never_reach_the_server_log(
    client: GraphQLClient, app_database: Database, alice: Person,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    await update_user(app_database, alice.user, password_hash=hash_password(PASSWORD))
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")  # SQL and its parameters too
    assert (await login(client, "alice@example.com", "wrong " + PASSWORD))["code"]
    token = (await login(client, "alice@example.com", PASSWORD))["token"]
    made = await client.execute(CREATE_TOKEN, {"input": {"name": "log"}}, token=token)
    secret = made["createApiToken"]["token"]
    assert await viewer_of(client, secret) == "alice"
    assert (await client.post(VIEWER, token=secret + "x")).status_code == 401

    assert caplog.records, "nothing was logged: the test would prove nothing"
    logged = caplog.text + "".join(repr(vars(record)) for record in caplog.records)
    for value in (PASSWORD, token, secret, alice.token):
        assert value not in logged
