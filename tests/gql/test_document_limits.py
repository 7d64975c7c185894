"""Hostile documents are refused while parsing or validating: before any SQL runs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from gql.http.app import create_app
from gql.settings import Settings
from persistence.engine import Database
from tests.support.graphql import GraphQLClient, codes
from tests.support.statements import count_statements


def nested(depth: int) -> str:
    """``posts { edges { node { comments { edges { node { post { ... } } } } } } }``:
    every level of the list pattern is 3 deep, so go field by field."""
    body, level = "id", 1
    inner = "post { comments(first: 1) { edges { node { %s } } } }"
    while level + 5 <= depth:
        body, level = inner % body, level + 5
    return "{ posts(first: 1) { edges { node { comments(first: 1) { edges { node { " + (
        body + " } } } } } } }"
    )


async def refused(
    client: GraphQLClient, database: Database, query: str, code: str = "GRAPHQL_VALIDATION_FAILED"
) -> str:
    with count_statements(database) as statements:
        errors = await client.errors(query)
    assert codes(errors) == [code], errors
    assert statements == [], "a refused document must not reach the database"
    return str(errors[0]["message"])


async def test_depth_is_limited(client: GraphQLClient, app_database: Database) -> None:
    message = await refused(client, app_database, nested(14))
    assert "exceeds maximum operation depth of 10" in message
    await client.execute("{ posts(first: 1) { edges { node { createdBy { posts(first: 1) "
                         "{ edges { node { id } } } } } } } }")  # fmt: skip


async def test_aliases_are_limited(client: GraphQLClient, app_database: Database) -> None:
    def aliased(count: int) -> str:  # under one root field, so only aliases count
        return "{ tags { " + " ".join(f"a{n}: totalCount" for n in range(count)) + " } }"

    assert "16 aliases found. Allowed: 15" in await refused(client, app_database, aliased(16))
    await client.execute(aliased(15))


async def test_tokens_are_limited(client: GraphQLClient, app_database: Database) -> None:
    huge = "{ " + " ".join("__typename" for _ in range(2100)) + " }"
    message = await refused(client, app_database, huge, "GRAPHQL_PARSE_FAILED")
    assert "2000 tokens" in message


async def test_root_fields_are_limited_fragments_included(
    client: GraphQLClient, app_database: Database
) -> None:
    fields = " ".join(f"t{n}: tags(first: 1) {{ totalCount }}" for n in range(6))
    more = " ".join(f"u{n}: users(first: 1) {{ totalCount }}" for n in range(5))
    query = f"query Wide {{ {fields} ...More }} fragment More on Query {{ {more} }}"
    message = await refused(client, app_database, query)
    assert "Wide selects 11 top-level fields; at most 10" in message


@pytest.fixture
async def strict_app(settings: Settings) -> AsyncIterator[Starlette]:
    strict = settings.model_copy(update={"max_query_depth": 3, "max_root_fields": 1})
    app = create_app(strict)
    async with app.router.lifespan_context(app):
        yield app


async def test_limits_are_configurable(strict_app: Starlette) -> None:
    transport = httpx.ASGITransport(app=strict_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        client = GraphQLClient(http)
        assert codes(await client.errors("{ a: __typename b: __typename }")) == [
            "GRAPHQL_VALIDATION_FAILED"
        ]
        assert codes(await client.errors("{ posts { edges { node { tags { name } } } } }")) == [
            "GRAPHQL_VALIDATION_FAILED"
        ]
        await client.execute("{ posts { totalCount } }")
