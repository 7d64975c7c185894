"""Every request refused before execution is answered as GraphQL: a JSON body
``{"errors": [{"message", "extensions": {"code", "requestId"}}]}`` with the HTTP status
of the refusal, never ``text/plain`` and never ``data``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gql.http.app import create_app
from gql.settings import Environment, Settings
from tests.support.rate_windows import within_one_window

HASH = "ab" * 32
QUERY = {"query": "{ __typename }"}

# (name, method, path, request keywords, status, code); GET queries differ by mode.
REFUSALS: list[tuple[str, str, str, dict[str, Any], int, str]] = [
    ("batch", "POST", "/graphql", {"json": [QUERY, QUERY]}, 400, "BAD_REQUEST"),
    ("no query", "POST", "/graphql", {"json": {"variables": {}}}, 400, "BAD_REQUEST"),
    ("empty object", "POST", "/graphql", {"json": {}}, 400, "BAD_REQUEST"),
    ("a number", "POST", "/graphql", {"json": 5}, 400, "BAD_REQUEST"),
    ("null", "POST", "/graphql",
     {"content": b"null", "headers": {"content-type": "application/json"}}, 400, "BAD_REQUEST"),
    ("no body", "POST", "/graphql", {}, 415, "BAD_USER_INPUT"),
    ("a string", "POST", "/graphql", {"json": "{ __typename }"}, 400, "BAD_REQUEST"),
    ("broken JSON", "POST", "/graphql",
     {"content": b'{"query": ', "headers": {"content-type": "application/json"}},
     400, "BAD_REQUEST"),
    ("query not a string", "POST", "/graphql", {"json": {"query": 5}}, 400, "BAD_REQUEST"),
    ("variables a list", "POST", "/graphql", {"json": {**QUERY, "variables": [1]}},
     400, "BAD_REQUEST"),
    ("extensions a string", "POST", "/graphql", {"json": {**QUERY, "extensions": "x"}},
     400, "BAD_REQUEST"),
    ("form body", "POST", "/graphql", {"data": {"query": "{ __typename }"}},
     415, "BAD_USER_INPUT"),
    ("document too large", "POST", "/graphql", {"json": {"query": "{" + " " * 40_000 + "}"}},
     413, "DOCUMENT_TOO_LARGE"),
    ("unknown hash", "POST", "/graphql",
     {"json": {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": HASH}}}},
     200, "PERSISTED_QUERY_NOT_FOUND"),
    ("PUT", "PUT", "/graphql", {"json": QUERY}, 405, "BAD_REQUEST"),
    ("DELETE", "DELETE", "/graphql", {}, 405, "BAD_REQUEST"),
    ("unknown path", "POST", "/graphq", {"json": QUERY}, 404, "BAD_REQUEST"),
    ("bad token", "POST", "/graphql",
     {"json": QUERY, "headers": {"authorization": "Bearer aq_nope"}}, 401, "UNAUTHENTICATED"),
]  # fmt: skip


@pytest.fixture(params=[Environment.DEVELOPMENT, Environment.PRODUCTION], ids=str)
async def http(
    request: pytest.FixtureRequest, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    configured = settings.model_copy(
        update={"environment": request.param, "allow_sqlite_in_production": True,
                "rate_limit_per_address": "", "sign_in_failure_limit": ""}
    )  # fmt: skip
    app = create_app(configured)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            client.headers["x-environment"] = request.param.value
            yield client


def assert_graphql_refusal(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"errors"}, body
    [error] = body["errors"]
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["extensions"]["code"] == code
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("method", "path", "request_kwargs", "status", "code"),
    [refusal[1:] for refusal in REFUSALS],
    ids=[refusal[0] for refusal in REFUSALS],
)
async def test_a_refusal_is_a_graphql_error_body(
    http: httpx.AsyncClient, method: str, path: str, request_kwargs: dict[str, Any],
    status: int, code: str,
) -> None:  # fmt: skip
    response = await http.request(method, path, **request_kwargs)
    assert_graphql_refusal(response, status, code)


async def test_a_get_query_runs_in_development_and_is_refused_as_graphql_in_production(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get("/graphql", params=QUERY)
    mutation = 'mutation { login(input: {email: "a", password: "b"}) { __typename } }'
    over_get = await http.get("/graphql", params={"query": mutation})
    if http.headers["x-environment"] == Environment.DEVELOPMENT.value:
        assert response.json() == {"data": {"__typename": "Query"}}
        assert_graphql_refusal(over_get, 400, "BAD_REQUEST")
    else:  # a GET runs only documents the server holds (test_persisted_documents.py)
        for refused in (response, over_get):
            assert_graphql_refusal(refused, 400, "PERSISTED_QUERY_REQUIRED")
            assert "persisted" in refused.json()["errors"][0]["message"]


async def test_cors_lets_a_browser_read_retry_after(settings: Settings) -> None:
    origin = "http://localhost:5173"
    configured = settings.model_copy(
        update={"cors_allowed_origins": [origin], "rate_limit_per_address": "1/minute"}
    )
    app = create_app(configured)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            headers = {"origin": origin}
            within_one_window()
            await client.post("/graphql", json=QUERY, headers=headers)
            limited = await client.post("/graphql", json=QUERY, headers=headers)
    assert_graphql_refusal(limited, 429, "RATE_LIMITED")
    exposed = limited.headers["access-control-expose-headers"].lower().split(", ")
    assert {"retry-after", "x-request-id"} <= set(exposed)
    assert limited.headers["access-control-allow-origin"] == origin
