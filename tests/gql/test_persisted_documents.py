"""Persisted documents: automatic persisted queries (hash-only -> not found ->
register -> hash-only runs), trusted documents from a manifest, GET in production only
for documents the server holds, limits on every run, bounded and shared storage."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from gql.http.app import create_app
from gql.http.persisted import sha256
from gql.settings import Environment, Settings
from tests.support.graphql import codes

POSTS = "query Posts($n: Int) { posts(first: $n) { totalCount } }"
LISTING = (
    "query Listing { posts(first: 1, orderBy: [TITLE_ASC]) "
    "{ pageInfo { hasNextPage } totalCount } viewer { id } }"
)
DEEP = "{ posts { edges { node { createdBy { posts { edges { node { id } } } } } } } }"

Client = Callable[..., Any]


@asynccontextmanager
async def serving(settings: Settings, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update=changes))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http


def persisted(query: str | None, digest: str, **more: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}},
        **more,
    }
    if query is not None:
        body["query"] = query
    return body


def as_params(body: dict[str, Any]) -> dict[str, str]:
    """A request body as GET query parameters (JSON values encoded, as clients do)."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}


def production(settings: Settings) -> dict[str, Any]:
    return {"environment": Environment.PRODUCTION, "allow_sqlite_in_production": True}


async def test_automatic_persisted_queries_register_then_run_by_hash(settings: Settings) -> None:
    digest = sha256(POSTS)
    async with serving(settings) as http:
        missing = await http.post("/graphql", json=persisted(None, digest))
        assert missing.status_code == 200
        assert codes(missing.json()["errors"]) == ["PERSISTED_QUERY_NOT_FOUND"]
        assert missing.json()["errors"][0]["message"] == "PersistedQueryNotFound"

        registered = await http.post("/graphql", json=persisted(POSTS, digest, variables={"n": 1}))
        assert registered.json() == {"data": {"posts": {"totalCount": 0}}}
        by_hash = await http.post("/graphql", json=persisted(None, digest, variables={"n": 2}))
        assert by_hash.json() == {"data": {"posts": {"totalCount": 0}}}


async def test_a_hash_that_is_not_the_documents_is_refused_and_not_kept(
    settings: Settings,
) -> None:
    wrong = sha256("{ viewer { id } }")
    async with serving(settings) as http:
        refused = await http.post("/graphql", json=persisted(POSTS, wrong))
        assert refused.status_code == 400
        assert codes(refused.json()["errors"]) == ["BAD_REQUEST"]
        assert "data" not in refused.json()
        later = await http.post("/graphql", json=persisted(None, wrong))
        assert codes(later.json()["errors"]) == ["PERSISTED_QUERY_NOT_FOUND"]
        for malformed in ({"version": 2, "sha256Hash": wrong}, {"version": 1, "sha256Hash": "x"},
                          {"version": 1, "sha256Hash": wrong.upper()}, "yes"):  # fmt: skip
            body = {"query": POSTS, "extensions": {"persistedQuery": malformed}}
            response = await http.post("/graphql", json=body)
            assert response.status_code == 400, malformed
            assert codes(response.json()["errors"]) == ["BAD_REQUEST"]


async def test_limits_apply_every_time_a_registered_document_runs(settings: Settings) -> None:
    async with serving(settings, max_query_depth=4, max_objects=50) as http:
        deep = sha256(DEEP)
        first = await http.post("/graphql", json=persisted(DEEP, deep))
        again = await http.post("/graphql", json=persisted(None, deep))
        for response in (first, again):
            assert codes(response.json()["errors"]) == ["GRAPHQL_VALIDATION_FAILED"]
            assert response.json().get("data") is None

        listing = "query Ids($n: Int) { posts(first: $n) { edges { node { id } } } }"
        digest = sha256(listing)
        fine = await http.post("/graphql", json=persisted(listing, digest, variables={"n": 10}))
        assert "errors" not in fine.json()
        costly = await http.post("/graphql", json=persisted(None, digest, variables={"n": 100}))
        assert codes(costly.json()["errors"]) == ["COST_LIMIT_EXCEEDED"]


async def test_the_store_keeps_the_most_recently_used_documents_only(settings: Settings) -> None:
    documents = [f"{{ posts(first: {n}) {{ totalCount }} }}" for n in range(3)]
    async with serving(settings, persisted_query_cache_size=2) as http:
        for document in documents:
            await http.post("/graphql", json=persisted(document, sha256(document)))
        results = [
            codes((await http.post("/graphql", json=persisted(None, sha256(d)))).json().get(
                "errors", []
            ))
            for d in documents
        ]  # fmt: skip
    assert results == [["PERSISTED_QUERY_NOT_FOUND"], [], []]


async def test_production_get_runs_only_documents_the_server_holds(settings: Settings) -> None:
    digest = sha256(POSTS)
    async with serving(settings, **production(settings)) as http:
        unknown = await http.get("/graphql", params={"query": POSTS})
        assert unknown.status_code == 400
        assert codes(unknown.json()["errors"]) == ["PERSISTED_QUERY_REQUIRED"]

        await http.post("/graphql", json=persisted(POSTS, digest))  # registered by POST
        by_hash = await http.get("/graphql", params=as_params(persisted(None, digest)))
        assert by_hash.json() == {"data": {"posts": {"totalCount": 0}}}
        held_text = await http.get("/graphql", params={"query": POSTS})
        assert held_text.json() == {"data": {"posts": {"totalCount": 0}}}

        mutation = 'mutation { login(input: {email: "a@b.c", password: "p"}) { __typename } }'
        await http.post("/graphql", json=persisted(mutation, sha256(mutation)))
        over_get = await http.get("/graphql", params=as_params(persisted(None, sha256(mutation))))
        assert over_get.status_code in (400, 405)
        assert "data" not in over_get.json()


def manifest(tmp_path: Path, *documents: str) -> Path:
    """A manifest as GraphQL Code Generator writes it: ``sha256:<hex>`` keys."""
    path = tmp_path / "persisted-documents.json"
    path.write_text(json.dumps({f"sha256:{sha256(d)}": d for d in documents}))
    return path


async def test_trusted_documents_run_and_nothing_else_does(
    settings: Settings, tmp_path: Path
) -> None:
    trusted = manifest(tmp_path, POSTS, LISTING)
    other = "{ tags { totalCount } }"
    async with serving(settings, **production(settings), trusted_documents=trusted) as http:
        by_hash = await http.get("/graphql", params=as_params(persisted(None, sha256(POSTS))))
        assert by_hash.json() == {"data": {"posts": {"totalCount": 0}}}
        reprinted = "query Posts($n: Int) {\n  posts(first: $n) {\n    totalCount\n  }\n}"
        for text in (POSTS, reprinted):  # as sent by a client that prints its own way
            response = await http.post("/graphql", json={"query": text})
            assert response.json() == {"data": {"posts": {"totalCount": 0}}}, text
        # The manifest's copy has its selections sorted; a client sends source order.
        reordered = (
            "query Listing { viewer { id } posts(orderBy: [TITLE_ASC], first: 1) "
            "{ totalCount pageInfo { hasNextPage } } }"
        )
        response = await http.post("/graphql", json={"query": reordered})
        assert "errors" not in response.json(), response.json()

        refused = await http.post("/graphql", json={"query": other})
        assert refused.status_code == 400
        assert codes(refused.json()["errors"]) == ["PERSISTED_QUERY_REQUIRED"]
        register = await http.post("/graphql", json=persisted(other, sha256(other)))
        assert codes(register.json()["errors"]) == ["PERSISTED_QUERY_REQUIRED"]
        unknown = await http.post("/graphql", json=persisted(None, sha256(other)))
        assert codes(unknown.json()["errors"]) == ["PERSISTED_QUERY_NOT_FOUND"]


def test_a_manifest_whose_hash_does_not_match_stops_start_up(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "persisted-documents.json"
    path.write_text(json.dumps({sha256("{ viewer { id } }"): POSTS}))
    with pytest.raises(ValidationError, match="is not the SHA-256 of its document"):
        Settings(database_url=settings.database_url, trusted_documents=path)
    path.write_text("[1, 2]")
    with pytest.raises(ValidationError, match="not a JSON object of hash -> document"):
        Settings(database_url=settings.database_url, trusted_documents=path)


async def test_processes_sharing_redis_share_registered_documents(
    settings: Settings, redis_url: str
) -> None:
    digest = sha256(POSTS)
    async with (
        serving(settings, rate_limit_storage=redis_url) as one,
        serving(settings, rate_limit_storage=redis_url) as two,
    ):
        await one.post("/graphql", json=persisted(POSTS, digest))
        by_hash = await two.post("/graphql", json=persisted(None, digest))
    assert by_hash.json() == {"data": {"posts": {"totalCount": 0}}}
