"""Comments over HTTP: written on visible posts, edited by their author, paged per post."""

from __future__ import annotations

from typing import Any

import pytest

from persistence.engine import Database
from tests.gql.conftest import Person
from tests.gql.factories import (
    audit_count,
    audit_log,
    changes,
    create_comment,
    create_post,
    history,
    mutate,
    succeed,
)
from tests.support.graphql import GraphQLClient, codes

COMMENTS = """query($id: ID!, $first: Int!, $after: String) { post(id: $id) {
    comments(first: $first, after: $after) { totalCount
      pageInfo { hasNextPage hasPreviousPage endCursor }
      edges { cursor node { id body createdBy { username } } } } } }"""


async def comments_of(
    client: GraphQLClient, post_id: str, who: Person | None = None, **variables: Any
) -> dict[str, Any]:
    variables = {"id": post_id, "first": 20} | variables
    data = await client.execute(COMMENTS, variables, token=who.token if who else None)
    connection: dict[str, Any] = data["post"]["comments"]
    return connection


def bodies(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["body"] for edge in connection["edges"]]


async def test_create_comment_is_stamped_and_listed_on_its_post(
    client: GraphQLClient, app_database: Database, alice: Person, bob: Person, admin: Person
) -> None:
    post = await create_post(client, alice, publish=True)
    before = await audit_count(app_database)

    comment = await create_comment(client, bob, post["id"], body="  Great read.  ")

    assert (comment["body"], comment["version"]) == ("Great read.", 1)
    assert comment["createdBy"] == comment["updatedBy"] == {"username": "bob"}
    assert comment["post"] == {"id": post["id"]}
    listed = await comments_of(client, post["id"])
    assert (bodies(listed), listed["totalCount"]) == (["Great read."], 1)
    assert listed["edges"][0]["node"]["createdBy"] == {"username": "bob"}
    [entry] = await history(client, bob, comment["id"])
    assert (entry["action"], entry["entityType"]) == ("CREATE", "comments")
    assert entry["actor"] == {"username": "bob"}
    assert changes(entry)["body"] == [None, "Great read."]
    assert [e["action"] for e in await audit_log(client, admin, comment["id"])] == ["CREATE"]
    assert await audit_count(app_database) == before + 1


async def test_updates_stamp_the_editor_and_bump_the_version(
    client: GraphQLClient, alice: Person, bob: Person, admin: Person
) -> None:
    post = await create_post(client, alice, publish=True)
    comment = await create_comment(client, bob, post["id"], body="Frist")

    own = await succeed(
        client, bob, "updateComment", id=comment["id"], body="First", expectedVersion=1
    )
    final = await succeed(
        client, admin, "updateComment", id=comment["id"], body="First!", expectedVersion=2
    )

    assert (own["version"], own["updatedBy"]) == (2, {"username": "bob"})
    assert (final["body"], final["version"]) == ("First!", 3)
    assert (final["createdBy"], final["updatedBy"]) == ({"username": "bob"}, {"username": "admin"})
    newest, middle, _ = await history(client, bob, comment["id"])
    assert (newest["action"], newest["actor"]) == ("UPDATE", {"username": "admin"})
    assert changes(newest) == {"body": ["First", "First!"]}
    assert (middle["actor"], changes(middle)) == ({"username": "bob"}, {"body": ["Frist", "First"]})


async def test_a_stale_version_conflicts_and_changes_nothing(
    client: GraphQLClient, app_database: Database, alice: Person, bob: Person
) -> None:
    post = await create_post(client, alice, publish=True)
    comment = await create_comment(client, bob, post["id"], body="One")
    await succeed(client, bob, "updateComment", id=comment["id"], body="Two")
    before = await audit_count(app_database)

    for name, extra in [("updateComment", {"body": "Lost"}), ("deleteComment", {})]:
        payload = await mutate(client, bob, name, id=comment["id"], expectedVersion=1, **extra)
        assert (payload["__typename"], payload["currentVersion"]) == ("ConflictError", 2), name

    assert await audit_count(app_database) == before
    assert bodies(await comments_of(client, post["id"])) == ["Two"]


@pytest.mark.parametrize(("body", "field"), [("", "body"), ("   ", "body"), ("x" * 10_001, "body")])
async def test_an_invalid_body_writes_nothing(
    client: GraphQLClient,
    app_database: Database,
    alice: Person,
    bob: Person,
    body: str,
    field: str,
) -> None:
    post = await create_post(client, alice, publish=True)
    before = await audit_count(app_database)

    payload = await mutate(client, bob, "createComment", postId=post["id"], body=body)

    assert (payload["__typename"], payload["field"]) == ("ValidationError", field)
    assert payload["code"] == "VALIDATION_FAILED"
    assert await audit_count(app_database) == before
    assert (await comments_of(client, post["id"]))["totalCount"] == 0


async def test_a_comment_of_the_longest_allowed_length_is_accepted(
    client: GraphQLClient, alice: Person, bob: Person
) -> None:
    post = await create_post(client, alice, publish=True)
    comment = await create_comment(client, bob, post["id"], body="y" * 10_000)
    assert len(comment["body"]) == 10_000


async def test_no_comment_on_a_post_the_viewer_cannot_see(
    client: GraphQLClient, app_database: Database, alice: Person, bob: Person
) -> None:
    draft = await create_post(client, alice)
    deleted = await create_post(client, alice, publish=True)
    await succeed(client, alice, "deletePost", id=deleted["id"])
    before = await audit_count(app_database)

    for post in (draft, deleted):
        payload = await mutate(client, bob, "createComment", postId=post["id"], body="Hello?")
        assert (payload["__typename"], payload["code"]) == ("NotFoundError", "NOT_FOUND")

    assert await audit_count(app_database) == before
    # The author may comment on her own draft.
    await create_comment(client, alice, draft["id"], body="Note to self")


async def test_only_the_author_or_a_superuser_edits_a_comment(
    client: GraphQLClient, app_database: Database, alice: Person, bob: Person, admin: Person
) -> None:
    post = await create_post(client, alice, publish=True)
    comment = await create_comment(client, bob, post["id"], body="Bob's")
    before = await audit_count(app_database)

    # Alice owns the post, not the comment.
    for name, extra in [("updateComment", {"body": "Alice's now"}), ("deleteComment", {})]:
        payload = await mutate(client, alice, name, id=comment["id"], **extra)
        assert (payload["__typename"], payload["code"]) == ("ForbiddenError", "FORBIDDEN"), name

    assert await audit_count(app_database) == before
    assert bodies(await comments_of(client, post["id"])) == ["Bob's"]
    assert await succeed(client, admin, "deleteComment", id=comment["id"]) == comment["id"]


async def test_a_comment_on_a_hidden_post_is_not_found_for_others(
    client: GraphQLClient, alice: Person, bob: Person
) -> None:
    draft = await create_post(client, alice)
    comment = await create_comment(client, alice, draft["id"], body="Private")

    payload = await mutate(client, bob, "updateComment", id=comment["id"], body="Seen")
    data = await client.execute(
        "query($id: ID!) { node(id: $id) { id } }", {"id": comment["id"]}, token=bob.token
    )

    assert payload["__typename"] == "NotFoundError"
    assert data["node"] is None


async def test_a_deleted_comment_leaves_the_post_and_its_count(
    client: GraphQLClient, alice: Person, bob: Person, admin: Person
) -> None:
    post = await create_post(client, alice, publish=True)
    keep = await create_comment(client, bob, post["id"], body="Keep")
    drop = await create_comment(client, bob, post["id"], body="Drop")

    payload = await mutate(client, bob, "deleteComment", id=drop["id"], expectedVersion=1)

    assert payload == {"__typename": "DeleteCommentSuccess", "deletedId": drop["id"]}
    for who in (None, bob, admin):
        listed = await comments_of(client, post["id"], who)
        assert (bodies(listed), listed["totalCount"]) == (["Keep"], 1)
        data = await client.execute(
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            {"ids": [keep["id"], drop["id"]]},
            token=who.token if who else None,
        )
        assert data["nodes"] == [{"id": keep["id"]}, None]
    [entry] = [e for e in await audit_log(client, admin, drop["id"]) if e["action"] != "CREATE"]
    assert (entry["action"], entry["actor"]) == ("SOFT_DELETE", {"username": "bob"})
    assert list(changes(entry)) == ["deletedAt"]
    payload = await mutate(client, bob, "updateComment", id=drop["id"], body="Back")
    assert payload["__typename"] == "NotFoundError"


async def test_an_anonymous_comment_is_unauthenticated(
    client: GraphQLClient, app_database: Database, alice: Person
) -> None:
    post = await create_post(client, alice, publish=True)
    before = await audit_count(app_database)

    errors = await client.errors(
        """mutation($input: CreateCommentInput!) { createComment(input: $input) {
            __typename } }""",
        {"input": {"postId": post["id"], "body": "Drive-by"}},
    )

    assert codes(errors) == ["UNAUTHENTICATED"]
    assert await audit_count(app_database) == before
    assert (await comments_of(client, post["id"]))["totalCount"] == 0


async def test_comments_page_per_post(client: GraphQLClient, alice: Person, bob: Person) -> None:
    first = await create_post(client, alice, title="First", publish=True)
    second = await create_post(client, alice, title="Second", publish=True)
    for i in range(5):
        await create_comment(client, bob, first["id"], body=f"a{i}")
        if i < 3:
            await create_comment(client, alice, second["id"], body=f"b{i}")
    query = """query($after: String) { posts(orderBy: [TITLE_ASC]) { edges { node {
        comments(first: 2, after: $after) { totalCount
          pageInfo { hasNextPage hasPreviousPage endCursor } edges { node { body } } } } } } }"""

    data = await client.execute(query)
    pages = [edge["node"]["comments"] for edge in data["posts"]["edges"]]

    assert [bodies(page) for page in pages] == [["a0", "a1"], ["b0", "b1"]]
    assert [page["totalCount"] for page in pages] == [5, 3]
    assert all(p["pageInfo"]["hasNextPage"] and not p["pageInfo"]["hasPreviousPage"] for p in pages)
    for post, expected in [(first, ["a0", "a1", "a2", "a3", "a4"]), (second, ["b0", "b1", "b2"])]:
        seen, after = [], None
        while True:
            page = await comments_of(client, post["id"], first=2, after=after)
            seen += bodies(page)
            assert page["pageInfo"]["hasPreviousPage"] == (after is not None)
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert seen == expected


@pytest.mark.parametrize(
    "arguments", ["first: -1", "first: 101", 'first: 2, after: "nope"', 'after: "WyJ4IixbXV0"']
)
async def test_bad_comment_page_arguments_are_user_input_errors(
    client: GraphQLClient, alice: Person, arguments: str
) -> None:
    post = await create_post(client, alice, publish=True)
    await create_comment(client, alice, post["id"])

    errors = await client.errors(
        f"query($id: ID!) {{ post(id: $id) {{ comments({arguments}) {{ totalCount }} }} }}",
        {"id": post["id"]},
    )

    assert codes(errors) == ["BAD_USER_INPUT"]
