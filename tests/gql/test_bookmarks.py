"""Bookmarks over HTTP: a user's own marks on posts they can see, with an optional note,
one live bookmark per user and post, soft-deleted and restored by their owner alone,
and hidden from everyone else (superusers included) and while their post is hidden."""

from __future__ import annotations

from typing import Any

from persistence.engine import Database
from tests.gql.conftest import Person
from tests.gql.factories import (
    audit_count,
    audit_log,
    changes,
    create_post,
    history,
    mutate,
    succeed,
)
from tests.support.graphql import GraphQLClient, codes

BOOKMARKS = """query($first: Int!, $after: String) { viewer { bookmarks(first: $first,
    after: $after) { totalCount pageInfo { hasNextPage endCursor }
    edges { node { id note post { id title } } } } } }"""
NODE = "query($id: ID!) { node(id: $id) { __typename ... on Bookmark { note } } }"


async def bookmarks_of(client: GraphQLClient, who: Person, **variables: Any) -> dict[str, Any]:
    """``viewer { bookmarks }`` as ``who`` sees them."""
    data = await client.execute(BOOKMARKS, {"first": 20} | variables, token=who.token)
    connection: dict[str, Any] = data["viewer"]["bookmarks"]
    return connection


def marked(connection: dict[str, Any]) -> list[str]:
    """The ids of the posts a bookmarks connection marks."""
    return [edge["node"]["post"]["id"] for edge in connection["edges"]]


async def bookmark(
    client: GraphQLClient, who: Person, post_id: str, note: str | None = None
) -> Any:
    return await succeed(client, who, "createBookmark", postId=post_id, note=note)


async def node(client: GraphQLClient, who: Person | None, id: str) -> Any:
    data = await client.execute(NODE, {"id": id}, token=who.token if who else None)
    return data["node"]


async def test_a_bookmark_is_stamped_listed_and_audited(
    client: GraphQLClient, alice: Person, admin: Person
) -> None:
    post = await create_post(client, admin, publish=True)

    made = await bookmark(client, alice, post["id"], note="  Read later.  ")

    assert (made["note"], made["version"]) == ("Read later.", 1)
    assert made["createdBy"] == made["updatedBy"] == {"username": "alice"}
    listed = await bookmarks_of(client, alice)
    assert (marked(listed), listed["totalCount"]) == ([post["id"]], 1)
    assert listed["edges"][0]["node"]["post"]["title"] == post["title"]
    [entry] = await history(client, alice, made["id"])
    assert (entry["action"], entry["entityType"]) == ("CREATE", "bookmarks")
    assert changes(entry)["note"] == [None, "Read later."]
    [logged] = await audit_log(client, admin, made["id"])
    assert logged["entityId"] == made["id"]


async def test_a_note_is_changed_cleared_and_versioned(
    client: GraphQLClient, app_database: Database, alice: Person, admin: Person
) -> None:
    post = await create_post(client, admin, publish=True)
    made = await bookmark(client, alice, post["id"], note="First")

    changed = await succeed(client, alice, "updateBookmark", id=made["id"], note="Second")
    cleared = await succeed(client, alice, "updateBookmark", id=made["id"], note="   ")
    before = await audit_count(app_database)
    stale = await mutate(
        client, alice, "updateBookmark", id=made["id"], note="Lost", expectedVersion=1
    )
    too_long = await mutate(client, alice, "updateBookmark", id=made["id"], note="x" * 1001)

    assert (changed["note"], changed["version"]) == ("Second", 2)
    assert (cleared["note"], cleared["version"]) == (None, 3)
    assert (stale["__typename"], stale["currentVersion"]) == ("ConflictError", 3)
    assert (too_long["__typename"], too_long["field"]) == ("ValidationError", "note")
    assert await audit_count(app_database) == before
    assert [e["action"] for e in await history(client, alice, made["id"])] == [
        "UPDATE", "UPDATE", "CREATE",
    ]  # fmt: skip


async def test_one_live_bookmark_per_user_and_post(
    client: GraphQLClient, alice: Person, bob: Person, admin: Person
) -> None:
    post = await create_post(client, admin, publish=True)
    first = await bookmark(client, alice, post["id"])

    again = await mutate(client, alice, "createBookmark", postId=post["id"])
    await bookmark(client, bob, post["id"])  # another user's is another bookmark
    await succeed(client, alice, "deleteBookmark", id=first["id"])
    second = await bookmark(client, alice, post["id"])  # deleting freed the pair
    restored = await mutate(client, alice, "restoreBookmark", id=first["id"])

    assert (again["__typename"], again["field"]) == ("AlreadyExistsError", "postId")
    assert (restored["__typename"], restored["field"]) == ("AlreadyExistsError", "postId")
    assert [edge["node"]["id"] for edge in (await bookmarks_of(client, alice))["edges"]] == [
        second["id"]
    ]


async def test_bookmarks_are_their_owner_s_alone(
    client: GraphQLClient, alice: Person, bob: Person, admin: Person
) -> None:
    post = await create_post(client, admin, publish=True)
    made = await bookmark(client, alice, post["id"], note="Private")
    users = """query($id: ID!) { node(id: $id) { ... on User { bookmarks(first: 5) {
        totalCount } } } }"""

    for who in (bob, admin, None):
        assert await node(client, who, made["id"]) is None
    assert (await node(client, alice, made["id"]))["note"] == "Private"
    for who in (bob, admin):
        data = await client.execute(users, {"id": alice.id}, token=who.token)
        assert data["node"]["bookmarks"]["totalCount"] == 0
        for name, input in [
            ("updateBookmark", {"id": made["id"], "note": "Mine now"}),
            ("deleteBookmark", {"id": made["id"]}),
        ]:
            assert (await mutate(client, who, name, **input))["__typename"] == "NotFoundError"
    assert (await bookmarks_of(client, alice))["totalCount"] == 1


async def test_a_bookmark_is_hidden_while_its_post_is(
    client: GraphQLClient, alice: Person, bob: Person
) -> None:
    post = await create_post(client, bob, publish=True)
    made = await bookmark(client, alice, post["id"])
    draft = await create_post(client, bob)

    await succeed(client, bob, "deletePost", id=post["id"])
    hidden = await bookmarks_of(client, alice)
    hidden_node = await node(client, alice, made["id"])
    update = await mutate(client, alice, "updateBookmark", id=made["id"], note="Gone?")
    on_draft = await mutate(client, alice, "createBookmark", postId=draft["id"])
    await succeed(client, bob, "restorePost", id=post["id"])

    assert (hidden["totalCount"], hidden_node) == (0, None)
    assert update["__typename"] == on_draft["__typename"] == "NotFoundError"
    assert marked(await bookmarks_of(client, alice)) == [post["id"]]


async def test_deleted_bookmarks_are_listed_for_their_owner_and_restored(
    client: GraphQLClient, alice: Person, bob: Person, admin: Person
) -> None:
    post = await create_post(client, admin, publish=True)
    made = await bookmark(client, alice, post["id"], note="Keep")
    deleted = "{ deletedBookmarks { totalCount edges { node { id note } } } }"

    gone = await succeed(client, alice, "deleteBookmark", id=made["id"], expectedVersion=1)
    alices, bobs, admins = [
        (await client.execute(deleted, token=who.token))["deletedBookmarks"]
        for who in (alice, bob, admin)
    ]
    restored = await succeed(client, alice, "restoreBookmark", id=made["id"])

    assert gone == made["id"]
    assert alices["edges"] == [{"node": {"id": made["id"], "note": "Keep"}}]
    assert bobs["totalCount"] == admins["totalCount"] == 0
    assert (restored["note"], restored["version"]) == ("Keep", 3)
    assert [e["action"] for e in await history(client, alice, made["id"])] == [
        "RESTORE", "SOFT_DELETE", "CREATE",
    ]  # fmt: skip
    assert (await client.execute(deleted, token=alice.token))["deletedBookmarks"]["edges"] == []


async def test_bookmarks_page_in_the_order_they_were_made(
    client: GraphQLClient, alice: Person, admin: Person
) -> None:
    posts = [await create_post(client, admin, publish=True) for _ in range(3)]
    for post in posts:
        await bookmark(client, alice, post["id"])

    first = await bookmarks_of(client, alice, first=2)
    rest = await bookmarks_of(client, alice, first=2, after=first["pageInfo"]["endCursor"])

    assert marked(first) + marked(rest) == [post["id"] for post in posts]
    assert (first["pageInfo"]["hasNextPage"], rest["pageInfo"]["hasNextPage"]) == (True, False)
    assert first["totalCount"] == rest["totalCount"] == 3


async def test_an_anonymous_bookmark_is_unauthenticated(
    client: GraphQLClient, app_database: Database, admin: Person
) -> None:
    post = await create_post(client, admin, publish=True)
    before = await audit_count(app_database)

    errors = await client.errors(
        """mutation($input: CreateBookmarkInput!) { createBookmark(input: $input) {
            __typename } }""",
        {"input": {"postId": post["id"]}},
    )

    assert codes(errors) == ["UNAUTHENTICATED"]
    assert await audit_count(app_database) == before
