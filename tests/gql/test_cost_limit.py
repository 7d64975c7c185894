"""The cost limit: an operation that may return more objects than AUDITQL_MAX_OBJECTS
(10,000) is refused with COST_LIMIT_EXCEEDED before it runs, through a real server on
PostgreSQL that logs every SQL statement, so the log shows none was sent for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType

from gql.engine.cost import declared_bound, is_connection
from gql.schema.build import build_schema
from gql.settings import Settings
from tests.gql.conftest import LiveServer, Scene

NESTED = """{ posts(first: 100) { edges { node { createdBy {
  posts(first: 100) { edges { node { id title body } } } } } } } }"""
BY_VARIABLE = """query($n: Int) { posts(first: $n) { edges { node {
  comments(first: $n) { edges { node { id } } } } } } }"""
AT_THE_LIMIT = """{ users(first: 100) { edges { node {
  posts(first: 99) { edges { node { id } } } } } } }"""  # 100 + 100 x 99


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_an_operation_over_the_cost_limit_is_refused_before_any_sql(
    live_server: LiveServer, scene: Scene, tmp_path: Path
) -> None:
    cases: list[tuple[str, dict[str, Any], int]] = [
        (NESTED, {}, 10_200),
        (BY_VARIABLE, {"n": 100}, 10_100),
        (AT_THE_LIMIT.replace("99", "100"), {}, 10_100),
    ]
    env = {"AUDITQL_ENVIRONMENT": "development", "AUDITQL_DB_ECHO": "true"}
    with live_server(**env) as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            refused = [
                await http.post("/graphql", json={"query": query, "variables": variables},
                                headers={"X-Request-ID": f"costly-{n}"})
                for n, (query, variables, _) in enumerate(cases)
            ]  # fmt: skip
            allowed = await http.post(
                "/graphql", json={"query": BY_VARIABLE, "variables": {"n": 99}}
            )
            at_limit = await http.post("/graphql", json={"query": AT_THE_LIMIT})

    for response, (_, _, objects) in zip(refused, cases, strict=True):
        assert response.status_code == 200
        body = response.json()
        [error] = body["errors"]
        assert error["extensions"]["code"] == "COST_LIMIT_EXCEEDED"
        assert error["message"] == (
            f"This operation could return {objects:,} objects; at most 10,000 are allowed. "
            "Ask for smaller pages or fewer nested lists."
        )
        assert body.get("data") is None
    assert "errors" not in allowed.json()
    assert "errors" not in at_limit.json()
    lines = [json.loads(line) for line in (tmp_path / "server.log").read_text().splitlines()]
    sql = [line for line in lines if line["logger"] == "sqlalchemy.engine.Engine"]
    assert sql  # the server does log its statements...
    costly = {line["request_id"] for line in sql if line["request_id"].startswith("costly-")}
    assert costly == set()  # ...and sent none for the refused operations


def test_every_list_field_has_a_bound() -> None:
    """The cost of a list needs its size: a connection's page, or a declared bound."""
    schema = build_schema(Settings.model_construct())._schema
    unbounded = []
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for name, field in type_.fields.items():
            wrapped = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            if not isinstance(wrapped, GraphQLList):
                continue
            if not (name == "edges" and is_connection(type_)) and declared_bound(field) is None:
                unbounded.append(f"{type_.name}.{name}")
    assert unbounded == []
