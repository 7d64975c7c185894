"""No log line ever carries a bearer token, a password or a query-string credential,
whatever the client sends and wherever it puts it: a real ``auditql serve`` on
PostgreSQL, logging everything it logs at DEBUG, is sent secrets every way, then its
whole log is searched for them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from persistence.security import new_token
from tests.gql.conftest import LiveServer, Scene

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

PASSWORD = "correct-horse-battery-staple-42"
LOGIN = "mutation($i: LoginInput!) { login(input: $i) { __typename } }"


async def test_no_secret_reaches_the_log_whatever_the_client_sends(
    live_server: LiveServer, scene: Scene, tmp_path: Path
) -> None:
    valid, forged = scene.token, new_token().secret
    secrets = {"valid token": valid, "forged token": forged, "password": PASSWORD}
    basic = base64.b64encode(f"alice@example.com:{PASSWORD}".encode()).decode()
    with live_server(AUDITQL_LOG_LEVEL="DEBUG") as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            for token in (valid, forged):
                document = {"query": "{ viewer { id } }"}
                bearer = {"Authorization": f"Bearer {token}"}
                sent = [
                    http.post("/graphql", json=document, headers=bearer),
                    http.post(f"/graphql?access_token={token}", json=document),
                    http.post(f"/graphql?token={token}&password={PASSWORD}", json=document),
                    http.get("/graphql", params={"query": "{ viewer { id } }", "token": token}),
                    http.post(f"/graphql/{token}", json=document),
                    http.get(f"/{token}"),
                    http.post("/graphql", json=document, headers={"X-Request-ID": token}),
                    http.post("/graphql", json=document, headers={"Cookie": f"session={token}"}),
                    http.post("/graphql", json=document, headers={"Referer": f"http://x/?t={token}"}),
                    http.post("/graphql", json={**document, "extensions": {"token": token}}),
                    http.post("/graphql", json={"query": f"query {token.replace('-', '_')} "
                                                          "{ viewer { id } }"}),
                    http.post("/graphql", json={"query": f"{{ {token} }}"}),
                    http.post("/graphql", json={"query": f'{{ post(slug: "{token}") {{ id }} }}'}),
                    http.post("/graphql", content=f"token={token}",
                              headers={"Content-Type": "application/x-www-form-urlencoded"}),
                ]  # fmt: skip
                for request in sent:
                    await request
            for login in (
                {"email": "alice@example.com", "password": PASSWORD},
                {"email": PASSWORD, "password": PASSWORD},
            ):
                await http.post("/graphql", json={"query": LOGIN, "variables": {"i": login}})
            await http.post(
                "/graphql",
                json={
                    "query": "mutation { login(input: {email: "
                    f'"alice@example.com", password: "{PASSWORD}"}}) {{ __typename }} }}'
                },
            )
            await http.post("/graphql", json={"query": "{ viewer { id } }"},
                            headers={"Authorization": f"Basic {basic}"})  # fmt: skip

    log = (tmp_path / "server.log").read_text()
    lines = [json.loads(line) for line in log.splitlines()]
    assert len([line for line in lines if line["logger"] == "uvicorn.access"]) >= 30
    found = {name for name, secret in secrets.items() if secret in log}
    # the part after the prefix is the secret too
    found |= {name for name, secret in secrets.items() if secret[3:] in log}
    assert found == set(), [
        line
        for line in log.splitlines()
        if any(s in line or s[3:] in line for s in secrets.values())
    ][:5]
    # Paths are still there for operators; only the query string is gone.
    assert any('"POST /graphql?[redacted] HTTP/1.1" 200' in line["message"] for line in lines)
