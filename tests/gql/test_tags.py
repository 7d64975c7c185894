"""Tags over HTTP: read by everyone, managed by superusers, unique ignoring case."""

from __future__ import annotations

from typing import Any

import pytest

from persistence.engine import Database
from tests.gql.conftest import Person, make_person
from tests.gql.factories import (
    audit_count,
    audit_log,
    changes,
    create_post,
    create_tag,
    history,
    mutate,
    succeed,
)
from tests.support.graphql import GraphQLClient, codes

TAGS = """query($first: Int, $after: String, $last: Int, $before: String, $orderBy: [TagOrder!]) {
  tags(first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { node { id name color } } } }"""


async def list_tags(client: GraphQLClient, **variables: Any) -> dict[str, Any]:
    connection: dict[str, Any] = (await client.execute(TAGS, variables))["tags"]
    return connection


def names(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["name"] for edge in connection["edges"]]


async def test_create_tag_is_stamped_and_audited(
    client: GraphQLClient, app_database: Database, admin: Person
) -> None:
    before = await audit_count(app_database)

    tag = await create_tag(client, admin, name=" Python ", color="#3776AB")

    assert (tag["name"], tag["color"], tag["version"]) == ("Python", "#3776ab", 1)
    assert tag["createdBy"] == tag["updatedBy"] == {"username": "admin"}
    [entry] = await history(client, admin, tag["id"])
    assert (entry["action"], entry["entityType"]) == ("CREATE", "tags")
    assert entry["actor"] == {"username": "admin"}
    assert changes(entry)["name"] == [None, "Python"]
    assert changes(entry)["color"] == [None, "#3776ab"]
    assert await audit_log(client, admin, tag["id"]) == [entry | {"entityId": tag["id"]}]
    assert await audit_count(app_database) == before + 1
    assert (await list_tags(client))["edges"][0]["node"] == {
        "id": tag["id"],
        "name": "Python",
        "color": "#3776ab",
    }


async def test_an_update_by_another_superuser_changes_updated_by_only(
    client: GraphQLClient, app_database: Database, admin: Person
) -> None:
    root = await make_person(app_database, "root", superuser=True)
    tag = await create_tag(client, admin, name="colour")

    updated = await succeed(
        client, root, "updateTag", id=tag["id"], name="color", color="#FF0000", expectedVersion=1
    )

    assert (updated["name"], updated["color"], updated["version"]) == ("color", "#ff0000", 2)
    assert (updated["createdBy"], updated["updatedBy"]) == (
        {"username": "admin"},
        {"username": "root"},
    )
    newest, _ = await history(client, root, tag["id"])
    assert (newest["action"], newest["actor"]) == ("UPDATE", {"username": "root"})
    assert changes(newest) == {"name": ["colour", "color"], "color": ["#6b7280", "#ff0000"]}


@pytest.mark.parametrize(
    ("input", "typename", "field"),
    [
        ({"name": "PYTHON"}, "AlreadyExistsError", "name"),
        ({"name": "python "}, "AlreadyExistsError", "name"),
        ({"name": "x" * 51}, "ValidationError", "name"),
        ({"name": "  "}, "ValidationError", "name"),
        ({"name": "rust", "color": "red"}, "ValidationError", "color"),
        ({"name": "rust", "color": "#12345g"}, "ValidationError", "color"),
        ({"name": "rust", "color": "#1234567"}, "ValidationError", "color"),
    ],
)
async def test_a_failed_create_leaves_no_tag_and_no_audit_entry(
    client: GraphQLClient,
    app_database: Database,
    admin: Person,
    input: dict[str, Any],
    typename: str,
    field: str,
) -> None:
    await create_tag(client, admin, name="Python")
    before = await audit_count(app_database)

    payload = await mutate(client, admin, "createTag", **input)

    assert (payload["__typename"], payload["field"]) == (typename, field)
    assert await audit_count(app_database) == before
    assert names(await list_tags(client)) == ["Python"]


async def test_renaming_onto_another_name_ignoring_case_fails(
    client: GraphQLClient, app_database: Database, admin: Person
) -> None:
    await create_tag(client, admin, name="Go")
    tag = await create_tag(client, admin, name="Golang")
    before = await audit_count(app_database)

    payload = await mutate(client, admin, "updateTag", id=tag["id"], name="gO")

    assert (payload["__typename"], payload["field"]) == ("AlreadyExistsError", "name")
    assert await audit_count(app_database) == before
    assert names(await list_tags(client)) == ["Go", "Golang"]
    # Changing only the case of its own name is fine.
    renamed = await succeed(client, admin, "updateTag", id=tag["id"], name="GoLang")
    assert renamed["name"] == "GoLang"


async def test_a_stale_version_conflicts(
    client: GraphQLClient, app_database: Database, admin: Person
) -> None:
    tag = await create_tag(client, admin, name="one")
    await succeed(client, admin, "updateTag", id=tag["id"], name="two")
    before = await audit_count(app_database)

    for name, extra in [("updateTag", {"name": "three"}), ("deleteTag", {})]:
        payload = await mutate(client, admin, name, id=tag["id"], expectedVersion=1, **extra)
        assert (payload["__typename"], payload["currentVersion"]) == ("ConflictError", 2), name

    assert await audit_count(app_database) == before
    assert names(await list_tags(client)) == ["two"]


async def test_only_superusers_manage_tags(
    client: GraphQLClient, app_database: Database, alice: Person, admin: Person
) -> None:
    tag = await create_tag(client, admin, name="mine")
    before = await audit_count(app_database)

    for name, input in [
        ("createTag", {"name": "theirs"}),
        ("updateTag", {"id": tag["id"], "name": "theirs"}),
        ("deleteTag", {"id": tag["id"]}),
    ]:
        payload = await mutate(client, alice, name, **input)
        assert (payload["__typename"], payload["code"]) == ("ForbiddenError", "FORBIDDEN"), name
        errors = await client.errors(
            f"mutation($input: {name[0].upper()}{name[1:]}Input!) "
            f"{{ {name}(input: $input) {{ __typename }} }}",
            {"input": input},
        )
        assert codes(errors) == ["UNAUTHENTICATED"], name

    assert await audit_count(app_database) == before
    assert names(await list_tags(client)) == ["mine"]


async def test_deleting_a_tag_unlinks_it_from_posts_with_an_audit_entry_each(
    client: GraphQLClient, alice: Person, admin: Person
) -> None:
    doomed = await create_tag(client, admin, name="doomed")
    kept = await create_tag(client, admin, name="kept")
    post = await create_post(client, alice, tagIds=[doomed["id"], kept["id"]], publish=True)

    deleted_id = await succeed(client, admin, "deleteTag", id=doomed["id"], expectedVersion=1)

    assert deleted_id == doomed["id"]
    assert names(await list_tags(client)) == ["kept"]
    data = await client.execute(
        "query($post: ID!, $tag: ID!) { post(id: $post) { tags { name } } node(id: $tag) { id } }",
        {"post": post["id"], "tag": doomed["id"]},
    )
    assert data == {"post": {"tags": [{"name": "kept"}]}, "node": None}
    [unlink, *_] = await history(client, alice, post["id"])
    assert (unlink["action"], unlink["entityType"]) == ("DELETE", "post_tags")
    assert unlink["actor"] == {"username": "admin"}
    [deleted, _] = await audit_log(client, admin, doomed["id"])
    assert (deleted["action"], changes(deleted)["name"]) == ("DELETE", ["doomed", None])
    found = await client.execute(
        "query($id: ID!) { posts(filter: {tagId: $id}) { totalCount } }", {"id": doomed["id"]}
    )
    assert found["posts"]["totalCount"] == 0


async def test_tags_list_pages_by_name(client: GraphQLClient, admin: Person) -> None:
    for name in ("delta", "alpha", "charlie", "bravo", "echo"):
        await create_tag(client, admin, name=name)

    page = await list_tags(client, first=2)
    rest = await list_tags(client, first=2, after=page["pageInfo"]["endCursor"])
    back = await list_tags(client, last=2, before=rest["pageInfo"]["startCursor"])

    assert (names(page), names(rest), names(back)) == (
        ["alpha", "bravo"],
        ["charlie", "delta"],
        ["alpha", "bravo"],
    )
    assert (rest["totalCount"], rest["pageInfo"]["hasNextPage"]) == (5, True)
    assert names(await list_tags(client, last=1)) == ["echo"]
    errors = await client.errors("{ tags(first: 101) { totalCount } }")
    assert codes(errors) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("NAME_ASC", ["alpha", "bravo", "charlie"]),
        ("NAME_DESC", ["charlie", "bravo", "alpha"]),
        ("CREATED_AT_ASC", ["bravo", "alpha", "charlie"]),
        ("CREATED_AT_DESC", ["charlie", "alpha", "bravo"]),
    ],
)
async def test_tags_list_order_by(
    client: GraphQLClient, admin: Person, order: str, expected: list[str]
) -> None:
    for name in ("bravo", "alpha", "charlie"):
        await create_tag(client, admin, name=name)

    page = await list_tags(client, first=2, orderBy=[order])
    rest = await list_tags(client, first=2, after=page["pageInfo"]["endCursor"], orderBy=[order])

    assert names(page) + names(rest) == expected
