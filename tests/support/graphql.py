"""A GraphQL client for tests: documents over HTTP, as a frontend sends them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class GraphQLClient:
    http: httpx.AsyncClient

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    async def execute(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        """The ``data`` of a successful operation; fails the test on any error."""
        response = await self.post(query, variables, token=token)
        body = response.json()
        assert response.status_code == 200, body
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def errors(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> list[dict[str, Any]]:
        """The top-level errors of an operation that must fail."""
        body = (await self.post(query, variables, token=token)).json()
        assert body.get("errors"), body
        errors: list[dict[str, Any]] = body["errors"]
        return errors


def codes(errors: list[dict[str, Any]]) -> list[str]:
    return [error["extensions"]["code"] for error in errors]


def without_request_ids(body: dict[str, Any]) -> dict[str, Any]:
    """An error body without its request ids (which differ by request), to compare two
    answers that must be the same; every error must have had one."""
    for error in body["errors"]:
        assert error["extensions"].pop("requestId")
    return body
