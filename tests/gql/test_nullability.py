"""The nullability rule: a field a viewer may be refused is nullable, so a refusal
(`FORBIDDEN`, `UNAUTHENTICATED`) costs that field alone and its siblings survive.

Each gated field is asked for beside siblings by a viewer it refuses; and a sweep asks
every field of the root types and of every object type (through ``node``), as an
anonymous viewer and as a signed-in one who created nothing, so a field gated later
is held to the rule without being listed here."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLObjectType,
    get_named_type,
    is_leaf_type,
    is_non_null_type,
)

from gql.settings import Settings
from tests.gql.conftest import Person
from tests.support.graphql import GraphQLClient
from tests.support.schema import committed_schema

REFUSALS = {"FORBIDDEN", "UNAUTHENTICATED"}


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The sweep sends a few hundred requests in a second or two."""
    return Settings(database_url=database_url, rate_limit_per_token="", rate_limit_per_address="")


async def body(client: GraphQLClient, query: str, token: str | None = None) -> dict[str, Any]:
    response = await client.post(query, token=token)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def refusal_paths(result: dict[str, Any]) -> list[list[str | int]]:
    """Where the refusals are (other errors, like a post asked for by no key, are not
    refusals: the same document fails for every viewer)."""
    return [e["path"] for e in result.get("errors", []) if e["extensions"]["code"] in REFUSALS]


@pytest.fixture
async def world(client: GraphQLClient, admin: Person, alice: Person) -> dict[str, str]:
    """One object of every type, made by the admin (a superuser); alice made nothing
    but a bookmark of her own. Ids by type name."""
    made = await client.execute(
        """mutation {
          tag: createTag(input: {name: "gated"}) { ... on TagSuccess { tag { id } } }
          flag: createFeatureFlag(input: {key: "gated", name: "Gated"}) {
            ... on FeatureFlagSuccess { featureFlag { id } } }
          post: createPost(input: {title: "Gated"}) { ... on PostSuccess { post { id } } }
        }""",
        token=admin.token,
    )
    ids = {
        "Tag": made["tag"]["tag"]["id"],
        "FeatureFlag": made["flag"]["featureFlag"]["id"],
        "Post": made["post"]["post"]["id"],
        "User": admin.id,
    }
    more = await client.execute(
        f"""mutation {{
          publishPost(input: {{id: "{ids["Post"]}"}}) {{ __typename }}
          comment: createComment(input: {{postId: "{ids["Post"]}", body: "Hi"}}) {{
            ... on CommentSuccess {{ comment {{ id }} }} }}
          override: setFlagOverride(input: {{flagId: "{ids["FeatureFlag"]}",
                                              userId: "{alice.id}", enabled: true}}) {{
            ... on FlagOverrideSuccess {{ flagOverride {{ id }} }} }}
        }}""",
        token=admin.token,
    )
    ids["Comment"] = more["comment"]["comment"]["id"]
    ids["FlagOverride"] = more["override"]["flagOverride"]["id"]
    return ids


GATED = [
    # (who is refused, the document, the sibling that must survive, the refused path)
    ("anonymous", "{ posts { totalCount } auditLog { totalCount } }", "posts", ["auditLog"]),
    ("alice", "{ viewer { username } auditLog { totalCount } }", "viewer", ["auditLog"]),
    ("alice", "{ viewer { username } featureFlags { totalCount } }", "viewer", ["featureFlags"]),
    ("anonymous", "{ tags { totalCount } apiTokens { totalCount } }", "tags", ["apiTokens"]),
    ("anonymous", '{ featureFlag(key: "gated") { key overrides { totalCount } } }',
     "featureFlag", ["featureFlag", "overrides"]),
    ("alice", "{ node(id: $Post) { id ... on Post { title history { totalCount } } } }",
     "node", ["node", "history"]),
    ("anonymous", "{ node(id: $User) { id ... on User { username history { totalCount } } } }",
     "node", ["node", "history"]),
    ("anonymous", 'mutation { createTag(input: {name: "x"}) { __typename } '
     'login(input: {email: "no@example.com", password: "wrong-password"}) { __typename } }',
     "login", ["createTag"]),
]  # fmt: skip


@pytest.mark.parametrize(("who", "document", "sibling", "path"), GATED)
async def test_a_refused_field_costs_that_field_alone(
    client: GraphQLClient, world: dict[str, str], alice: Person,
    who: str, document: str, sibling: str, path: list[str],
) -> None:  # fmt: skip
    for name, global_id in world.items():
        document = document.replace(f"${name}", f'"{global_id}"')
    result = await body(client, document, alice.token if who == "alice" else None)
    assert [e["path"] for e in result["errors"]] == refusal_paths(result) == [path]
    data = result["data"]
    assert data[sibling] is not None
    refused = data
    for key in path:
        refused = refused[key]
    assert refused is None


def selection(field_type: Any) -> str:
    return "" if is_leaf_type(get_named_type(field_type)) else " { __typename }"


def has_default(argument: GraphQLArgument) -> bool:
    # A schema built from SDL keeps a default only in its syntax tree.
    return argument.ast_node is not None and argument.ast_node.default_value is not None


def askable(fields: dict[str, Any]) -> dict[str, Any]:
    """Fields that can be asked without arguments of our choosing."""
    return {
        name: field
        for name, field in fields.items()
        if all(not is_non_null_type(a.type) or has_default(a) for a in field.args.values())
    }  # fmt: skip


@pytest.mark.parametrize("who", ["anonymous", "alice"])
async def test_no_field_is_refused_at_the_cost_of_its_parent(
    client: GraphQLClient, world: dict[str, str], alice: Person, who: str
) -> None:
    schema = committed_schema()
    token = alice.token if who == "alice" else None
    checked = 0
    for name, field in askable(schema.query_type.fields).items():  # type: ignore[union-attr]
        result = await body(client, f"{{ __typename {name}{selection(field.type)} }}", token)
        if refusal_paths(result):
            assert result["data"] is not None, (name, result)
            assert not is_non_null_type(field.type), name
            checked += 1
    for type_name, global_id in world.items():
        object_type = schema.get_type(type_name)
        assert isinstance(object_type, GraphQLObjectType)
        for name, field in askable(object_type.fields).items():
            query = (f'{{ node(id: "{global_id}") {{ __typename ... on {type_name} '
                     f"{{ {name}{selection(field.type)} }} }} }}")  # fmt: skip
            result = await body(client, query, token)
            if refusal_paths(result):
                assert result["data"]["node"] is not None, (type_name, name, result)
                checked += 1
    assert checked > 0  # the sweep met refusals: it looked where they are
