"""Hostile strings in every argument that filters or looks up rows, and in mutation
inputs, sent over HTTP to a real ``auditql serve`` on both backends.

Proven here: ``%``, ``_``, ``\\``, quotes, emoji, right-to-left and combining text match
literally, exactly the rows that contain them, the same way on SQLite and PostgreSQL;
values no database can compare (a NUL character, a lone surrogate) and values over
200 characters are a top-level ``BAD_USER_INPUT`` that names the argument, refused
before any SQL runs; mutation inputs with them are a ``ValidationError`` naming the
field and write nothing; forged cursors and date-times that leave the calendar in UTC
are clean input errors. None of it is ever a 5xx or an ``INTERNAL_SERVER_ERROR``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gql.schema.scalars import MAX_FILTER_LENGTH
from gql.settings import Settings
from persistence.engine import Database
from tests.gql.conftest import LiveServer, Person, make_person
from tests.support.graphql import GraphQLClient, codes
from tests.support.statements import count_statements

# (the argument as errors name it, the root field, a document taking it as $v)
FILTERS = [
    ("filter.search", "posts", "query($v: String) { posts(filter: {search: $v}) { totalCount } }"),
    ("filter.search", "users", "query($v: String) { users(filter: {search: $v}) { totalCount } }"),
    ("slug", "post", "query($v: String) { post(slug: $v) { title } }"),
    ("key", "featureFlag", "query($v: String!) { featureFlag(key: $v) { key } }"),
    ("filter.entityType", "auditLog",
     "query($v: String) { auditLog(filter: {entityType: $v}) { totalCount } }"),
]  # fmt: skip
UNUSABLE = {
    "NUL": "a\x00b", "lone surrogate": "a\ud800b",
    "one too many": "x" * (MAX_FILTER_LENGTH + 1), "1 MB": "x" * 1_000_000,
}  # fmt: skip
USABLE = [
    "%", "_", "\\", "'", '"', "' OR '1'='1", "'); DROP TABLE posts;--", "%_\\%", "👍🏽",
    "\u202eevil", "مرحبا", "שלום", "cafe\u0301", "x" * MAX_FILTER_LENGTH,
]  # fmt: skip

# Titles (and users' full names) to search, each needle with exactly what it must find.
TEXTS = [
    "100% done", "100 done", "a_b", "axb", "a\\b", "ab", "abc", "it's \"quoted\"",
    "café", "cafe\u0301", "👍🏽 thumbs", "\u202eevil", "مرحبا بالعالم", "שלום עולם",
]  # fmt: skip
NEEDLES = {
    "%": ["100% done"], "100%": ["100% done"], "_": ["a_b"], "a_b": ["a_b"],
    "\\": ["a\\b"], "a\\b": ["a\\b"], "'": ["it's \"quoted\""], '"': ["it's \"quoted\""],
    "ABC": ["abc"], "e\u0301": ["cafe\u0301"], "é": ["café"], "👍🏽": ["👍🏽 thumbs"],
    "\u202e": ["\u202eevil"], "بالعالم": ["مرحبا بالعالم"], "עולם": ["שלום עולם"],
    "%%": [], "a%b": [], "a__": [],
}  # fmt: skip


class EscapingClient(GraphQLClient):
    """Sends JSON as browsers do, with characters escaped: httpx writes raw UTF-8, which
    cannot carry a lone surrogate, but ``JSON.stringify("\\ud800")`` can."""

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = json.dumps({"query": query, "variables": variables or {}})
        return await self.http.post("/graphql", content=payload, headers=headers)


_UUID = "0" * 32
# Cursors of the posts list's default order and of its order by title, forged.
FORGED_CURSORS = [
    base64.urlsafe_b64encode(raw.encode()).decode()
    for raw in (
        "[" * 10_000,
        '["created_at:d,id:d",["2026-01-01T00:00:00+00:00",5]]',
        f'["created_at:d,id:d",["0001-01-01T00:00:00+05:00","{_UUID}"]]',
        f'["title:a,id:a",["\\u0000","{_UUID}"]]',
        f'["title:a,id:a",["\\ud800","{_UUID}"]]',
    )
]


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Authentication reads the token on every request (no token cache): a refusal is
    compared with what authentication alone sends."""
    return Settings(database_url=database_url, token_cache_seconds=0)


@pytest.fixture
async def superuser(served_database: Database) -> Person:
    return await make_person(served_database, "root", superuser=True)


@pytest.fixture
async def api(live_server: LiveServer, superuser: Person) -> AsyncIterator[GraphQLClient]:
    """The real server, on this test's database (SQLite or PostgreSQL)."""
    with live_server() as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
            yield EscapingClient(http)


def no_tracebacks(tmp_path: Path) -> None:
    assert "exc_info" not in (tmp_path / "server.log").read_text()


async def test_unusable_filter_values_are_refused_naming_the_argument(
    api: GraphQLClient, superuser: Person, tmp_path: Path
) -> None:
    for argument, field, document in FILTERS:
        for what, value in UNUSABLE.items():
            response = await api.post(document, {"v": value}, token=superuser.token)
            body = response.json()
            assert response.status_code == 200, (field, what, body)
            assert codes(body["errors"]) == ["BAD_USER_INPUT"], (field, what, body)
            assert body["errors"][0]["message"].startswith(f"{argument} "), (field, what, body)
            assert (body["data"] or {}).get(field) is None
    no_tracebacks(tmp_path)


async def test_hostile_but_usable_filter_values_are_answered(
    api: GraphQLClient, superuser: Person, tmp_path: Path
) -> None:
    for _, field, document in FILTERS:
        for value in USABLE:
            data = await api.execute(document, {"v": value}, token=superuser.token)
            assert field in data
    no_tracebacks(tmp_path)


async def test_search_matches_text_literally_and_exactly(
    api: GraphQLClient, superuser: Person
) -> None:
    for n, text in enumerate(TEXTS):
        created = await api.execute(
            """mutation($title: String!, $slug: String!, $email: String!, $name: String!) {
              createPost(input: {title: $title, slug: $slug}) { __typename }
              createUser(input: {email: $email, username: $name, fullName: $title}) { __typename }
            }""",
            {"title": text, "slug": f"post-{n}", "email": f"u{n}@example.com", "name": f"user{n}"},
            token=superuser.token,
        )  # fmt: skip
        assert created == {"createPost": {"__typename": "PostSuccess"},
                           "createUser": {"__typename": "UserSuccess"}}  # fmt: skip
    for needle, expected in NEEDLES.items():
        data = await api.execute(
            """query($v: String) {
              posts(first: 100, filter: {search: $v}) { edges { node { title } } }
              users(first: 100, filter: {search: $v}) { edges { node { fullName } } }
            }""",
            {"v": needle},
            token=superuser.token,
        )
        titles = sorted(edge["node"]["title"] for edge in data["posts"]["edges"])
        names = sorted(edge["node"]["fullName"] for edge in data["users"]["edges"])
        assert titles == names == sorted(expected), needle


async def test_lookups_by_key_and_entity_type_are_exact(
    api: GraphQLClient, superuser: Person
) -> None:
    token = superuser.token
    for key in ("a_b", "axb"):
        created = await api.execute(
            'mutation($key: String!) { createFeatureFlag(input: {key: $key, name: "Flag"}) '
            "{ __typename } }", {"key": key}, token=token,
        )  # fmt: skip
        assert created["createFeatureFlag"]["__typename"] == "FeatureFlagSuccess"
    flag = "query($v: String!) { featureFlag(key: $v) { key } }"
    found = [(await api.execute(flag, {"v": key}, token=token))["featureFlag"]
             for key in ("a_b", "a%", "a\\_b")]  # fmt: skip
    assert found == [{"key": "a_b"}, None, None]
    entries = "query($v: String) { auditLog(filter: {entityType: $v}) { totalCount } }"
    counts = [(await api.execute(entries, {"v": kind}, token=token))["auditLog"]["totalCount"]
              for kind in ("feature_flags", "feature_flag_", "feature%")]  # fmt: skip
    assert counts == [2, 0, 0]


async def test_refusals_happen_before_any_sql(
    client: GraphQLClient, app_database: Database, superuser: Person
) -> None:
    """The request sends exactly what authentication sends, and nothing else."""
    client = EscapingClient(client.http)
    await client.execute("{ __typename }", token=superuser.token)  # settles the token's bookkeeping
    with count_statements(app_database) as baseline:
        await client.execute("{ __typename }", token=superuser.token)
    assert baseline, "authentication reads the token"
    for argument, field, document in FILTERS:
        for value in UNUSABLE.values():
            with count_statements(app_database) as statements:
                errors = await client.errors(document, {"v": value}, token=superuser.token)
            assert codes(errors) == ["BAD_USER_INPUT"], (field, errors)
            assert statements == baseline, (argument, field)


async def totals(api: GraphQLClient, token: str) -> dict[str, Any]:
    return await api.execute(
        "{ posts { totalCount } tags { totalCount } users { totalCount } "
        "featureFlags { totalCount } auditLog { totalCount } apiTokens { totalCount } }",
        token=token,
    )


async def test_mutation_text_no_database_can_store_is_refused_and_writes_nothing(
    api: GraphQLClient, superuser: Person, tmp_path: Path
) -> None:
    created = await api.execute(
        'mutation { createPost(input: {title: "Kept"}) { ... on PostSuccess { post { id } } } }',
        token=superuser.token,
    )
    post_id = created["createPost"]["post"]["id"]
    before = await totals(api, superuser.token)
    # (mutation, its input, the input field at fault); each written with a NUL and with
    # a lone surrogate in place of $v.
    cases = [
        ("createPost", '{title: $v, slug: "nul"}', "title"),
        ("createPost", '{title: "Body", slug: "body", body: $v}', "body"),
        ("updatePost", f'{{id: "{post_id}", title: $v}}', "title"),
        ("createComment", f'{{postId: "{post_id}", body: $v}}', "body"),
        ("createTag", "{name: $v}", "name"),
        ("createFeatureFlag", '{key: "flag", name: "Flag", description: $v}', "description"),
        ("createUser", '{email: "u@example.com", username: "u", fullName: $v}', "fullName"),
        ("createUser", '{email: "u@example.com", username: "u", password: $v}', "password"),
        ("createApiToken", "{name: $v}", "name"),
    ]  # fmt: skip
    for mutation, fields, field in cases:
        document = (f"mutation($v: String!) {{ {mutation}(input: {fields}) "
                    "{ __typename ... on ValidationError { field } } }")  # fmt: skip
        for value in ("a\x00" * 6, "a\ud800" * 6):  # 12 characters: a valid password length
            data = await api.execute(document, {"v": value}, token=superuser.token)
            assert data[mutation] == {"__typename": "ValidationError", "field": field}, value
    assert await totals(api, superuser.token) == before
    no_tracebacks(tmp_path)


async def test_forged_cursors_are_input_errors(api: GraphQLClient, superuser: Person) -> None:
    """Regressions: each of these once escaped the cursor decoding as an unexpected
    error (JSON nested past the recursion limit, a number where a UUID goes, an instant
    that leaves the calendar in UTC), or reached PostgreSQL with a NUL in it."""
    created = await api.execute(
        'mutation { createPost(input: {title: "P", slug: "p"}) { __typename } }',
        token=superuser.token,
    )
    assert created == {"createPost": {"__typename": "PostSuccess"}}
    for cursor in FORGED_CURSORS:
        for document in (
            "query($c: String) { posts(after: $c) { totalCount } }",
            "query($c: String) { posts(orderBy: [TITLE_ASC], before: $c) { totalCount } }",
            'query($c: String) { post(slug: "p") { comments(after: $c) { totalCount } } }',
        ):
            errors = await api.errors(document, {"c": cursor}, token=superuser.token)
            assert codes(errors) == ["BAD_USER_INPUT"], (cursor, errors)


async def test_date_times_out_of_range_in_utc_are_input_errors(
    api: GraphQLClient, superuser: Person
) -> None:
    """Regression: an offset that pushes an instant past year 1 or 9999 in UTC failed
    in the database driver. A huge value is not echoed back whole."""
    document = "query($v: DateTime) { posts(filter: {createdAfter: $v}) { totalCount } }"
    for value in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00", "x" * 1_000_000):
        errors = await api.errors(document, {"v": value}, token=superuser.token)
        assert codes(errors) == ["BAD_USER_INPUT"], errors
        assert len(errors[0]["message"]) < 200
    data = await api.execute(document, {"v": "2026-05-01T12:00:00+14:00"}, token=superuser.token)
    assert data == {"posts": {"totalCount": 0}}


async def test_login_with_an_email_no_row_can_hold_is_invalid_credentials(
    api: GraphQLClient,
) -> None:
    """Regression: the email reached PostgreSQL, which refused to compare it."""
    document = """mutation($email: String!) { login(input: {email: $email,
                  password: "correct horse battery"}) { __typename } }"""
    for email in ("admin\x00@example.com", "admin\ud800@example.com"):
        data = await api.execute(document, {"email": email})
        assert data == {"login": {"__typename": "InvalidCredentialsError"}}
