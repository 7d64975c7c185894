"""Production mode: no introspection, no GraphiQL, no queries over GET, no field
suggestions, no batched operations. schema.graphql stays the contract for tooling."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gql.http.app import create_app
from gql.settings import Environment, Settings
from tests.support.graphql import GraphQLClient, codes


@pytest.fixture
async def production(settings: Settings) -> AsyncIterator[GraphQLClient]:
    locked = settings.model_copy(
        update={"environment": Environment.PRODUCTION, "allow_sqlite_in_production": True}
    )
    app = create_app(locked)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield GraphQLClient(http)


async def test_introspection_is_off(production: GraphQLClient) -> None:
    for query in ("{ __schema { types { name } } }", '{ __type(name: "Post") { name } }'):
        errors = await production.errors(query)
        assert set(codes(errors)) == {"GRAPHQL_VALIDATION_FAILED"}
        assert all("introspection" in error["message"].lower() for error in errors)
    await production.execute("{ __typename }")  # not introspection of the schema


async def test_graphiql_and_get_queries_are_off(production: GraphQLClient) -> None:
    page = await production.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assets = await production.http.get("/graphql/assets/graphiql@4.1.2/graphiql.min.js")
    assert assets.status_code == 404
    query = await production.http.get("/graphql", params={"query": "{ __typename }"})
    assert query.status_code in (400, 404, 405)
    assert "data" not in query.text


async def test_no_field_suggestions(production: GraphQLClient, client: GraphQLClient) -> None:
    typo = "{ posts { totalCont } }"
    assert "Did you mean" not in str(await production.errors(typo))
    assert "Did you mean" in str(await client.errors(typo))  # development still helps


async def test_batched_operations_are_refused(production: GraphQLClient) -> None:
    batch = [{"query": "{ __typename }"}, {"query": "{ __typename }"}]
    response = await production.http.post("/graphql", json=batch)
    assert response.status_code == 400
    assert "data" not in response.text
