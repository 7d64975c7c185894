"""The README's first command, for real: `auditql serve` on a fresh database, used over
HTTP with a token made the way `auditql create-token` makes it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from gql.cli import admin
from gql.settings import Settings
from persistence import migrations
from persistence.engine import create_engine
from tests.conftest import backend_url
from tests.support.server import serving


@pytest.fixture
async def database_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        # The development default: `serve` migrates the embedded database itself.
        return f"sqlite+aiosqlite:///{tmp_path / 'auditql.db'}"
    url = backend_url(request, backend, f"serve_{tmp_path.name}")
    engine = create_engine(Settings(database_url=url))
    await migrations.run(engine, "upgrade", "head")
    await engine.dispose()
    return url


async def test_serve_answers_queries_and_mutations_over_http(
    database_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=database_url)
    env = {"AUDITQL_DATABASE_URL": database_url, "AUDITQL_LOG_FORMAT": "json"}
    with serving(env, tmp_path / "server.log") as server:
        await admin.create_user(settings, "root@example.com", "root", "", None, superuser=True)
        token = await admin.create_token(settings, "root@example.com", "test", None)
        async with httpx.AsyncClient(base_url=server.base) as http:
            created = await http.post(
                "/graphql",
                headers={"Authorization": f"Bearer {token}"},
                json={"query": 'mutation { createTag(input: {name: "served"}) { __typename '
                      "... on TagSuccess { tag { name createdBy { username } } } } }"},
            )  # fmt: skip
            listed = await http.post(
                "/graphql",
                json={"query": "{ tags { totalCount edges { node { name } } } }"},
                headers={"X-Request-ID": "served-1"},
            )
    assert created.json()["data"]["createTag"]["tag"] == {
        "name": "served",
        "createdBy": {"username": "root"},
    }
    assert listed.json()["data"]["tags"] == {
        "totalCount": 1,
        "edges": [{"node": {"name": "served"}}],
    }

    # Every line is JSON, uvicorn's own included, and a request's lines carry its id.
    lines = [json.loads(line) for line in (tmp_path / "server.log").read_text().splitlines()]
    assert {"uvicorn.error", "uvicorn.access", "auditql.operations"} <= {
        line["logger"] for line in lines
    }
    served = [line for line in lines if line["request_id"] == "served-1"]
    assert {line["logger"] for line in served} == {"auditql.operations", "uvicorn.access"}
