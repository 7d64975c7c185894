"""Posts over HTTP: the writes an author makes, and who sees what (drafts, deletions)."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import pytest

from gql.schema.ids import to_global_id
from persistence.engine import Database
from tests.gql.conftest import Person
from tests.gql.factories import (
    audit_count,
    audit_log,
    changes,
    create_comment,
    create_post,
    create_tag,
    history,
    list_posts,
    mutate,
    succeed,
    titles,
)
from tests.support.graphql import GraphQLClient, codes

SEEN = """query($id: ID!, $slug: String!, $author: ID!) {
  posts(first: 100) { totalCount edges { node { id } } }
  byId: post(id: $id) { id }  bySlug: post(slug: $slug) { id }
  node(id: $id) { id }  nodes(ids: [$id]) { id }
  author: node(id: $author) { ... on User {
    posts(first: 100) { totalCount edges { node { id } } } } } }"""

EVERYWHERE = dict.fromkeys(("posts", "post(id)", "post(slug)", "node", "nodes", "User.posts"))


def token(who: Person | None) -> str | None:
    return who.token if who else None


async def where_seen(
    client: GraphQLClient, who: Person | None, post: dict[str, Any], author: Person
) -> dict[str, bool]:
    """Which read paths show ``post`` to ``who``; every list's totalCount must agree."""
    variables = {"id": post["id"], "slug": post["slug"], "author": author.id}
    data = await client.execute(SEEN, variables, token=token(who))
    lists = {"posts": data["posts"], "User.posts": data["author"]["posts"]}
    for connection in lists.values():
        assert connection["totalCount"] == len(connection["edges"])
    found = {name: post["id"] in {e["node"]["id"] for e in c["edges"]} for name, c in lists.items()}
    singles = {"post(id)": data["byId"], "post(slug)": data["bySlug"], "node": data["node"]}
    found |= {name: value is not None for name, value in singles.items()}
    return found | {"nodes": data["nodes"] != [None]}


def seen(everywhere: bool) -> dict[str, bool]:
    return {name: everywhere for name in EVERYWHERE}


# -- writes ------------------------------------------------------------------------------


async def test_create_post_is_stamped_with_the_viewer_and_audited(
    client: GraphQLClient, app_database: Database, alice: Person, admin: Person
) -> None:
    before = await audit_count(app_database)
    post = await create_post(client, alice, title=" Hello, World! ", body="First.")

    assert (post["title"], post["slug"], post["body"]) == ("Hello, World!", "hello-world", "First.")
    assert (post["status"], post["version"], post["publishedAt"]) == ("DRAFT", 1, None)
    assert post["createdBy"] == post["updatedBy"] == {"username": "alice"}
    [entry] = await history(client, alice, post["id"])
    assert (entry["action"], entry["actor"]) == ("CREATE", {"username": "alice"})
    assert changes(entry)["title"] == [None, "Hello, World!"]
    assert changes(entry)["status"] == [None, "DRAFT"]
    assert await audit_log(client, admin, post["id"]) == [entry | {"entityId": post["id"]}]
    assert await audit_count(app_database) == before + 1


async def test_an_update_by_someone_else_changes_updated_by_only(
    client: GraphQLClient, alice: Person, admin: Person
) -> None:
    post = await create_post(client, alice, title="Old title")

    updated = await succeed(client, admin, "updatePost", id=post["id"], title="New title")

    assert (updated["title"], updated["slug"], updated["version"]) == ("New title", "old-title", 2)
    assert updated["createdBy"] == {"username": "alice"}
    assert updated["updatedBy"] == {"username": "admin"}
    assert updated["updatedAt"] > post["updatedAt"]
    newest, first = await history(client, alice, post["id"])
    assert (newest["action"], newest["actor"]) == ("UPDATE", {"username": "admin"})
    assert changes(newest) == {"title": ["Old title", "New title"]}
    assert first["action"] == "CREATE"


async def test_publish_sets_published_at_and_makes_the_post_public(
    client: GraphQLClient, alice: Person, bob: Person
) -> None:
    draft = await create_post(client, alice)

    post = await succeed(client, alice, "publishPost", id=draft["id"], expectedVersion=1)

    assert (post["status"], post["version"]) == ("PUBLISHED", 2)
    assert post["publishedAt"] is not None
    [entry, _] = await history(client, alice, post["id"])
    assert changes(entry)["status"] == ["DRAFT", "PUBLISHED"]
    assert changes(entry)["publishedAt"][0] is None
    assert await where_seen(client, bob, post, alice) == seen(True)
    assert await where_seen(client, None, post, alice) == seen(True)


async def test_a_stale_expected_version_is_a_conflict_and_changes_nothing(
    client: GraphQLClient, app_database: Database, alice: Person
) -> None:
    post = await create_post(client, alice, title="Version one")
    await succeed(client, alice, "updatePost", id=post["id"], body="v2")
    before = await audit_count(app_database)

    for name, extra in [("updatePost", {"title": "Lost"}), ("publishPost", {}), ("deletePost", {})]:
        payload = await mutate(client, alice, name, id=post["id"], expectedVersion=1, **extra)
        assert payload["__typename"] == "ConflictError", (name, payload)
        assert (payload["code"], payload["currentVersion"]) == ("CONFLICT", 2)

    assert await audit_count(app_database) == before
    post = await succeed(client, alice, "updatePost", id=post["id"], expectedVersion=2, title="3")
    assert (post["title"], post["body"], post["version"]) == ("3", "v2", 3)


async def test_of_two_concurrent_edits_at_one_version_exactly_one_wins(
    client: GraphQLClient, alice: Person, admin: Person
) -> None:
    post = await create_post(client, alice, title="Original")

    results = await asyncio.gather(
        *(
            mutate(client, who, "updatePost", id=post["id"], title=title, expectedVersion=1)
            for who, title in [(alice, "Alice's"), (admin, "Admin's")]
        )
    )

    kinds = sorted(result["__typename"] for result in results)
    assert kinds == ["ConflictError", "PostSuccess"]
    [winner] = [r["post"] for r in results if r["__typename"] == "PostSuccess"]
    [loser] = [r for r in results if r["__typename"] == "ConflictError"]
    assert (winner["version"], loser["currentVersion"]) == (2, 2)
    assert [e["action"] for e in await history(client, alice, post["id"])] == ["UPDATE", "CREATE"]


@pytest.mark.parametrize(
    ("input", "typename", "field"),
    [
        ({"title": "Taken", "slug": "taken"}, "AlreadyExistsError", "slug"),
        ({"title": "Taken"}, "AlreadyExistsError", "slug"),
        ({"title": "x" * 201}, "ValidationError", "title"),
        ({"title": "   "}, "ValidationError", "title"),
        ({"title": "Fine", "slug": "Not a slug"}, "ValidationError", "slug"),
        ({"title": "!!!"}, "ValidationError", "slug"),
        ({"title": "Bad tag", "tagIds": [to_global_id("Tag", UUID(int=7))]}, "NotFoundError", None),
    ],
)
async def test_a_failed_create_leaves_no_row_and_no_audit_entry(
    client: GraphQLClient,
    app_database: Database,
    alice: Person,
    admin: Person,
    input: dict[str, Any],
    typename: str,
    field: str | None,
) -> None:
    await create_post(client, alice, title="Taken")
    before = await audit_count(app_database)

    payload = await mutate(client, alice, "createPost", **input)

    assert payload["__typename"] == typename, payload
    assert payload.get("field") == field
    assert await audit_count(app_database) == before
    assert titles(await list_posts(client, admin)) == ["Taken"]


async def test_an_update_to_a_taken_slug_fails_and_keeps_the_post(
    client: GraphQLClient, app_database: Database, alice: Person
) -> None:
    await create_post(client, alice, title="First", slug="first")
    post = await create_post(client, alice, title="Second", slug="second")
    before = await audit_count(app_database)

    payload = await mutate(client, alice, "updatePost", id=post["id"], slug="first")

    assert (payload["__typename"], payload["field"]) == ("AlreadyExistsError", "slug")
    assert await audit_count(app_database) == before
    data = await client.execute(
        "query($id: ID!) { post(id: $id) { slug version } }", {"id": post["id"]}, token=alice.token
    )
    assert data["post"] == {"slug": "second", "version": 1}


@pytest.mark.parametrize("publish", [True, False], ids=["published", "draft"])
@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("updatePost", {"title": "Mine now"}),
        ("publishPost", {}),
        ("deletePost", {}),
        ("setPostTags", {"tagIds": []}),
    ],
)
async def test_only_the_author_or_a_superuser_edits_a_post(
    client: GraphQLClient,
    app_database: Database,
    alice: Person,
    bob: Person,
    admin: Person,
    publish: bool,
    name: str,
    extra: dict[str, Any],
) -> None:
    post = await create_post(client, alice, publish=publish)
    before = await audit_count(app_database)
    input = {"postId" if name == "setPostTags" else "id": post["id"], **extra}

    payload = await mutate(client, bob, name, **input)

    # A draft is invisible to bob: he must not learn that it exists.
    expected = ("ForbiddenError", "FORBIDDEN") if publish else ("NotFoundError", "NOT_FOUND")
    assert (payload["__typename"], payload["code"]) == expected
    assert await audit_count(app_database) == before
    await succeed(client, admin, name, **input)


async def test_an_anonymous_mutation_is_unauthenticated_and_writes_nothing(
    client: GraphQLClient, app_database: Database, alice: Person
) -> None:
    post = await create_post(client, alice, publish=True)
    before = await audit_count(app_database)

    for name, input_type, input in [
        ("createPost", "CreatePostInput", {"title": "Anonymous"}),
        ("updatePost", "UpdatePostInput", {"id": post["id"], "title": "Defaced"}),
        ("deletePost", "PostVersionInput", {"id": post["id"]}),
    ]:
        document = f"mutation($i: {input_type}!) {{ {name}(input: $i) {{ __typename }} }}"
        errors = await client.errors(document, {"i": input})
        assert codes(errors) == ["UNAUTHENTICATED"], name

    assert await audit_count(app_database) == before
    assert titles(await list_posts(client)) == [post["title"]]


async def test_set_post_tags_replaces_the_tags_and_audits_each_link(
    client: GraphQLClient, alice: Person, admin: Person
) -> None:
    a, b, c = [await create_tag(client, admin, name=name) for name in ("apple", "banana", "cherry")]
    post = await create_post(client, alice, tagIds=[b["id"], a["id"]])
    assert post["tags"] == [{"name": "apple"}, {"name": "banana"}]

    tag_ids = [c["id"], b["id"], c["id"]]
    post = await succeed(client, alice, "setPostTags", postId=post["id"], tagIds=tag_ids)

    assert post["tags"] == [{"name": "banana"}, {"name": "cherry"}]
    entries = await history(client, alice, post["id"])
    links = [(e["action"], e["entityType"], e["actor"]["username"], changes(e)) for e in entries]
    assert sorted(links[:2], key=str) == [
        ("CREATE", "post_tags", "alice", {"tags": [None, c["id"]]}),
        ("DELETE", "post_tags", "alice", {"tags": [a["id"], None]}),
    ]
    assert titles(await list_posts(client, alice, filter={"tagId": a["id"]})) == []


async def test_set_post_tags_rejects_unknown_tags_and_too_many(
    client: GraphQLClient, app_database: Database, alice: Person, admin: Person
) -> None:
    tag = await create_tag(client, admin)
    post = await create_post(client, alice, tagIds=[tag["id"]])
    before = await audit_count(app_database)
    unknown = to_global_id("Tag", UUID(int=1))
    many = [to_global_id("Tag", UUID(int=i)) for i in range(1, 22)]

    for tag_ids, typename, field in [
        ([tag["id"], unknown], "NotFoundError", None),
        (many, "ValidationError", "tagIds"),
    ]:
        payload = await mutate(client, alice, "setPostTags", postId=post["id"], tagIds=tag_ids)
        assert (payload["__typename"], payload.get("field")) == (typename, field)

    assert await audit_count(app_database) == before
    data = await client.execute(
        "query($id: ID!) { post(id: $id) { tags { id } } }", {"id": post["id"]}, token=alice.token
    )
    assert data["post"]["tags"] == [{"id": tag["id"]}]


async def test_tag_changes_move_the_version_so_a_stale_write_conflicts(
    client: GraphQLClient, alice: Person, admin: Person
) -> None:
    # expectedVersion on setPostTags guards against lost updates only if a change of
    # tags is a new version of the post.
    a, b = await create_tag(client, admin), await create_tag(client, admin)
    post = await create_post(client, alice)

    tagged = await succeed(
        client, alice, "setPostTags", postId=post["id"], tagIds=[a["id"]], expectedVersion=1
    )
    stale = await mutate(
        client, admin, "setPostTags", postId=post["id"], tagIds=[b["id"]], expectedVersion=1
    )

    assert (tagged["version"], tagged["updatedBy"]) == (2, {"username": "alice"})
    assert (stale["__typename"], stale["currentVersion"]) == ("ConflictError", 2)


# -- who sees what -----------------------------------------------------------------------


async def test_drafts_are_seen_by_their_author_and_superusers_only(
    client: GraphQLClient, alice: Person, bob: Person, admin: Person
) -> None:
    draft = await create_post(client, alice, title="Alice draft")
    public = await create_post(client, alice, title="Alice public", publish=True)
    await create_post(client, bob, title="Bob draft")

    for who, visible in [(None, False), (bob, False), (alice, True), (admin, True)]:
        assert await where_seen(client, who, draft, alice) == seen(visible), who
        assert await where_seen(client, who, public, alice) == seen(True), who
    expected = [
        (None, ["Alice public"]),
        (bob, ["Bob draft", "Alice public"]),
        (alice, ["Alice public", "Alice draft"]),
        (admin, ["Bob draft", "Alice public", "Alice draft"]),
    ]
    for who, listed in expected:
        assert titles(await list_posts(client, who)) == listed, who


async def test_history_is_for_the_creator_and_superusers(
    client: GraphQLClient, alice: Person, bob: Person, admin: Person
) -> None:
    post = await create_post(client, alice, publish=True)
    query = "query($id: ID!) { post(id: $id) { title history { totalCount } } }"

    for who, code in [(None, "UNAUTHENTICATED"), (bob, "FORBIDDEN")]:
        errors = await client.errors(query, {"id": post["id"]}, token=token(who))
        assert codes(errors) == [code]
    for who in (alice, admin):
        data = await client.execute(query, {"id": post["id"]}, token=who.token)
        assert data["post"]["history"]["totalCount"] == 2


async def test_a_deleted_post_is_gone_everywhere_until_restored(
    client: GraphQLClient, alice: Person, bob: Person, admin: Person
) -> None:
    post = await create_post(client, alice, title="Doomed", publish=True)
    comment = await create_comment(client, bob, post["id"])
    await create_post(client, alice, title="Survivor", publish=True)
    comment_query = "query($id: ID!) { node(id: $id) { id } }"

    assert await succeed(client, alice, "deletePost", id=post["id"]) == post["id"]
    for who in (None, bob, alice, admin):
        assert await where_seen(client, who, post, alice) == seen(False), who
        data = await client.execute(comment_query, {"id": comment["id"]}, token=token(who))
        assert data["node"] is None, who
        assert titles(await list_posts(client, who)) == ["Survivor"], who

    restored = await succeed(client, alice, "restorePost", id=post["id"], expectedVersion=3)
    assert restored["version"] == 4
    for who in (None, bob, alice, admin):
        assert await where_seen(client, who, post, alice) == seen(True), who
        data = await client.execute(comment_query, {"id": comment["id"]}, token=token(who))
        assert data["node"] == {"id": comment["id"]}, who
    actions = [entry["action"] for entry in await history(client, alice, post["id"])]
    assert actions == ["RESTORE", "SOFT_DELETE", "UPDATE", "CREATE"]
    entries = await audit_log(client, admin, post["id"])
    assert [e["actor"] for e in entries[:2]] == [{"username": "alice"}] * 2


async def test_restoring_a_post_whose_slug_was_reused_fails(
    client: GraphQLClient, app_database: Database, alice: Person
) -> None:
    old = await create_post(client, alice, title="Same slug")
    await succeed(client, alice, "deletePost", id=old["id"])
    await create_post(client, alice, title="Same slug")  # a deleted post frees its slug
    before = await audit_count(app_database)

    payload = await mutate(client, alice, "restorePost", id=old["id"])

    assert (payload["__typename"], payload["field"]) == ("AlreadyExistsError", "slug")
    assert await audit_count(app_database) == before
    assert titles(await list_posts(client, alice)) == ["Same slug"]
