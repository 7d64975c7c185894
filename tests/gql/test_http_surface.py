"""/health, /ready, /metrics, request ids, CORS and the body limit, over HTTP."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from gql.http.app import create_app
from gql.settings import Settings
from tests.gql.conftest import Person
from tests.support.graphql import GraphQLClient


@pytest.fixture
async def silent_database() -> AsyncIterator[int]:
    """A port that accepts connections and never answers (a hung database)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
        await writer.wait_closed()


async def probe(settings: Settings, path: str) -> httpx.Response:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.get(path)


async def test_health_and_ready_with_the_database_up(client: GraphQLClient) -> None:
    assert (await client.http.get("/health")).json() == {"status": "ok"}
    ready = await client.http.get("/ready")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_ready_is_503_and_health_200_when_the_database_is_unreachable(
    silent_database: int,
) -> None:
    refused = Settings(database_url="postgresql+asyncpg://x@127.0.0.1:1/none")
    hung = Settings(
        database_url=f"postgresql+asyncpg://x@127.0.0.1:{silent_database}/none",
        ready_timeout_seconds=0.5,
    )
    for settings in (refused, hung):
        started = asyncio.get_running_loop().time()
        ready = await probe(settings, "/ready")
        assert (ready.status_code, ready.json()) == (503, {"status": "unavailable"})
        assert asyncio.get_running_loop().time() - started < 3
        assert (await probe(settings, "/health")).status_code == 200


async def test_metrics_count_requests_operations_and_the_pool(
    client: GraphQLClient, alice: Person
) -> None:
    await client.execute("query ListTags { tags { totalCount } }")
    await client.execute("query ListTags { tags { totalCount } }")
    await client.post("query Broken { posts(first: 1000) { totalCount } }")
    await client.post('mutation Anonymous { createTag(input: {name: "x"}) { __typename } }')
    text = (await client.http.get("/metrics")).text
    assert 'auditql_graphql_operations_total{operation="ListTags",outcome="ok"} 2.0' in text
    assert 'operation="Broken",outcome="BAD_USER_INPUT"} 1.0' in text
    assert 'operation="Anonymous",outcome="UNAUTHENTICATED"} 1.0' in text
    assert 'auditql_http_requests_total{method="POST",path="/graphql",status="200"} 4.0' in text
    assert re.search(r'auditql_http_request_duration_seconds_count\{method="POST",'
                     r'path="/graphql"\} 4\.0', text)  # fmt: skip
    assert "auditql_db_pool_connections_in_use 0.0" in text


async def test_operation_names_cannot_inflate_the_metrics(client: GraphQLClient) -> None:
    await client.post("query { tags { totalCount } }")
    await client.http.post("/graphql", json={"query": "{ tags { totalCount } }",
                                             "operationName": "x" * 100})  # fmt: skip
    text = (await client.http.get("/metrics")).text
    assert 'operation="anonymous"' in text
    assert "x" * 100 not in text


async def test_request_ids_are_taken_echoed_or_made(client: GraphQLClient) -> None:
    given = await client.http.get("/health", headers={"X-Request-ID": "edge-42"})
    assert given.headers["x-request-id"] == "edge-42"
    for odd in ("", "with space", "x" * 65):
        made = await client.http.get("/health", headers={"X-Request-ID": odd})
        assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    errors = (await client.post("{ posts(first: -1) { totalCount } }")).json()["errors"]
    response = await client.http.post(
        "/graphql", json={"query": "{ nope }"}, headers={"X-Request-ID": "edge-43"}
    )
    assert response.json()["errors"][0]["extensions"]["requestId"] == "edge-43"
    assert errors[0]["extensions"]["requestId"]


@pytest.fixture
async def cors_app(settings: Settings) -> AsyncIterator[Starlette]:
    allowed = settings.model_copy(update={"cors_allowed_origins": ["https://app.example.com"]})
    application = create_app(allowed)
    async with application.router.lifespan_context(application):
        yield application


async def test_cors_answers_only_configured_origins(cors_app: Starlette) -> None:
    transport = httpx.ASGITransport(app=cors_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        preflight = {"Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization,content-type"}  # fmt: skip
        ok = await http.options(
            "/graphql", headers={"Origin": "https://app.example.com", **preflight}
        )
        assert ok.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "access-control-allow-credentials" not in ok.headers
        evil = await http.options("/graphql", headers={"Origin": "https://evil.test", **preflight})
        assert "access-control-allow-origin" not in evil.headers
        simple = await http.post("/graphql", json={"query": "{ __typename }"},
                                 headers={"Origin": "https://evil.test"})  # fmt: skip
        assert "access-control-allow-origin" not in simple.headers


async def test_bodies_over_the_limit_get_413_before_parsing(client: GraphQLClient) -> None:
    big = '{"query": "{ __typename }", "pad": "' + "x" * 1_100_000 + '"}'
    declared = await client.http.post(
        "/graphql", content=big, headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        for start in range(0, len(big), 65_536):
            yield big[start : start + 65_536].encode()

    streamed = await client.http.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert streamed.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    small = await client.http.post("/graphql", json={"query": "{ __typename }"})
    assert small.json() == {"data": {"__typename": "Query"}}
