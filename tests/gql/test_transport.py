"""Only JSON is executed: a mutation sent the ways a page on another site can send one
without a CORS preflight (a form, text/plain, multipart) is refused with 415 and
changes nothing. Through a real server on PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from persistence.engine import Database
from tests.gql.conftest import LiveServer, make_person
from tests.support.audit import audit_entries

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

MUTATION = 'mutation { createTag(input: {name: "csrf"}) { __typename } }'
JSON_BODY = '{"query": "mutation { createTag(input: {name: \\"csrf\\"}) { __typename } }"}'


def refused_requests(http: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    """name -> a request carrying the mutation in a way that must not be executed."""

    def raw(content_type: str) -> Any:
        return http.post("/graphql", content=JSON_BODY,
                         headers={**auth, "Content-Type": content_type})  # fmt: skip

    return {
        "form": http.post("/graphql", data={"query": MUTATION}, headers=auth),
        "multipart": http.post("/graphql", headers=auth,
                               files={"operations": (None, JSON_BODY), "map": (None, "{}")}),
        "text-plain": raw("text/plain"),
        "no-content-type": raw(""),
        "json-lookalike": raw("application/jsonp"),
    }  # fmt: skip


async def test_only_json_posts_are_executed(
    live_server: LiveServer, served_database: Database
) -> None:
    admin = await make_person(served_database, "admin", superuser=True)
    auth = {"Authorization": f"Bearer {admin.token}"}
    with live_server() as server:
        async with httpx.AsyncClient(base_url=server.base) as http:
            refused = {
                name: await request for name, request in refused_requests(http, auth).items()
            }
            tags_before = await http.post(
                "/graphql", json={"query": "{ tags { totalCount } }"}, headers=auth
            )
            accepted = await http.post(
                "/graphql", content=JSON_BODY,
                headers={**auth, "Content-Type": "application/json; charset=utf-8"},
            )  # fmt: skip
    for name, response in refused.items():
        assert response.status_code == 415, (name, response.text)
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", name
        assert "application/json" in error["message"]
    assert tags_before.json()["data"] == {"tags": {"totalCount": 0}}
    assert accepted.json()["data"] == {"createTag": {"__typename": "TagSuccess"}}
    assert [e.entity_type for e in await audit_entries(served_database)].count("tags") == 1
