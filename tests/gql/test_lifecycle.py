"""Delete, restore and the list of what one may restore, for every soft-deletable entity:
the people allowed to restore a row (its author, superusers) see it in ``deleted…``,
nobody else does, and restoring brings it back everywhere."""

from __future__ import annotations

from typing import Any

from tests.gql.conftest import Person
from tests.gql.factories import create_comment, create_post, mutate, succeed
from tests.support.graphql import GraphQLClient, codes

DELETED = """query($first: Int, $after: String) {
    deletedPosts(first: $first, after: $after) { totalCount edges { node { id version } } }
    deletedComments(first: $first, after: $after) { totalCount edges { node { id body } } } }"""


async def deleted(client: GraphQLClient, who: Person | None, **variables: Any) -> dict[str, Any]:
    """``{"deletedPosts": [ids], "deletedComments": [ids]}`` as ``who`` sees them."""
    data = await client.execute(DELETED, variables, token=who.token if who else None)
    lists: dict[str, Any] = {}
    for field, connection in data.items():
        ids = [edge["node"]["id"] for edge in connection["edges"]]
        assert connection["totalCount"] == len(ids)
        lists[field] = ids
    return lists


async def test_deleted_rows_are_listed_for_who_may_restore_them(
    client: GraphQLClient, alice: Person, bob: Person, admin: Person
) -> None:
    post = await create_post(client, alice, publish=True)
    gone = await create_post(client, alice, publish=True)
    alices = await create_comment(client, alice, post["id"], body="Mine")
    bobs = await create_comment(client, bob, post["id"], body="His")
    for who, name, row in [
        (alice, "deletePost", gone),
        (alice, "deleteComment", alices),
        (bob, "deleteComment", bobs),
    ]:
        await succeed(client, who, name, id=row["id"])

    assert await deleted(client, alice) == {
        "deletedPosts": [gone["id"]],
        "deletedComments": [alices["id"]],
    }
    assert await deleted(client, bob) == {"deletedPosts": [], "deletedComments": [bobs["id"]]}
    assert await deleted(client, admin) == {
        "deletedPosts": [gone["id"]],
        "deletedComments": [bobs["id"], alices["id"]],  # the most recently created first
    }
    assert await deleted(client, None) == {"deletedPosts": [], "deletedComments": []}


async def test_deleted_lists_page_newest_first(client: GraphQLClient, alice: Person) -> None:
    made = [await create_post(client, alice) for _ in range(3)]
    for post in made:
        await succeed(client, alice, "deletePost", id=post["id"])

    first = await client.execute(
        "{ deletedPosts(first: 2) { pageInfo { hasNextPage endCursor } edges { node { id } } } }",
        token=alice.token,
    )
    page = first["deletedPosts"]
    rest = await client.execute(
        "query($after: String) { deletedPosts(first: 2, after: $after) { edges { node { id } } } }",
        {"after": page["pageInfo"]["endCursor"]},
        token=alice.token,
    )

    listed = [e["node"]["id"] for e in page["edges"] + rest["deletedPosts"]["edges"]]
    assert page["pageInfo"]["hasNextPage"] is True
    assert listed == [post["id"] for post in reversed(made)]


async def test_a_comment_on_a_hidden_post_is_not_listed_nor_restorable(
    client: GraphQLClient, alice: Person, bob: Person
) -> None:
    post = await create_post(client, alice, publish=True)
    comment = await create_comment(client, bob, post["id"])
    await succeed(client, bob, "deleteComment", id=comment["id"])
    await succeed(client, alice, "deletePost", id=post["id"])

    assert (await deleted(client, bob))["deletedComments"] == []
    payload = await mutate(client, bob, "restoreComment", id=comment["id"])
    assert payload["__typename"] == "NotFoundError"


async def test_restoring_a_comment_brings_it_back_to_its_post(
    client: GraphQLClient, alice: Person, bob: Person, admin: Person
) -> None:
    post = await create_post(client, alice, publish=True)
    comment = await create_comment(client, bob, post["id"], body="Second thoughts")
    await succeed(client, bob, "deleteComment", id=comment["id"])

    refused = await mutate(client, alice, "restoreComment", id=comment["id"])
    stale = await mutate(client, bob, "restoreComment", id=comment["id"], expectedVersion=1)
    restored = await succeed(client, bob, "restoreComment", id=comment["id"], expectedVersion=2)

    assert (refused["__typename"], refused["code"]) == ("ForbiddenError", "FORBIDDEN")
    assert (stale["__typename"], stale["currentVersion"]) == ("ConflictError", 2)
    assert (restored["body"], restored["version"]) == ("Second thoughts", 3)
    assert restored["updatedBy"] == {"username": "bob"}
    data = await client.execute(
        "query($id: ID!) { post(id: $id) { comments(first: 5) { totalCount } } }",
        {"id": post["id"]},
    )
    assert data["post"]["comments"]["totalCount"] == 1
    assert (await deleted(client, admin))["deletedComments"] == []
    again = await succeed(client, admin, "restoreComment", id=comment["id"])
    assert again["version"] == 3  # restoring is idempotent: nothing changed


async def test_restoring_asks_for_a_signed_in_viewer(client: GraphQLClient, alice: Person) -> None:
    post = await create_post(client, alice)
    await succeed(client, alice, "deletePost", id=post["id"])

    errors = await client.errors(
        "mutation($i: PostVersionInput!) { restorePost(input: $i) { __typename } }",
        {"i": {"id": post["id"]}},
    )

    assert "UNAUTHENTICATED" in codes(errors)
