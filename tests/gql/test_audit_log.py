"""The audit log over HTTP: who may read it, its filters, what every mutation writes
into it, and that no operation can change it."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from gql.schema.ids import to_global_id
from persistence.audit import AuditContext
from persistence.base import utcnow
from persistence.engine import Database
from persistence.models import (
    ApiToken,
    AuditLog,
    Comment,
    FeatureFlag,
    FlagOverride,
    Post,
    PostStatus,
)
from persistence.models.bookmark import Bookmark
from persistence.repositories.api_token import ApiTokenRepository
from persistence.repositories.feature_flag import FeatureFlagRepository, FlagOverrideRepository
from persistence.repositories.post import PostRepository
from persistence.repositories.tag import TagRepository
from persistence.repositories.user import UserRepository
from persistence.repository import repository_for
from persistence.security import hash_password, new_token
from persistence.unit_of_work import UnitOfWork
from tests.factories.post import create_comment, create_post
from tests.factories.tag import create_tag
from tests.gql.conftest import Person
from tests.support.audit import audit_entries, opened_entries
from tests.support.graphql import GraphQLClient, codes

REQUEST_ID, CLIENT_ADDRESS, USER_AGENT = "test-123", "203.0.113.9", "auditql-tests/1.0"
PASSWORD = "correct horse battery staple"
AUDIT_LOG = """query($filter: AuditLogFilter) { auditLog(filter: $filter, first: 100) {
  totalCount edges { node { id action entityType entityId requestId ipAddress userAgent
  actor { username } changes { field old new } } } } }"""


def gid(type_name: str, key: Any) -> str:
    return to_global_id(type_name, key)


async def written(
    database: Database, actor: Person | None, make: Callable[[UnitOfWork], Awaitable[Any]]
) -> Any:
    """Arrange data through a unit of work acting as ``actor``."""
    async with UnitOfWork(database, AuditContext(actor.user.id if actor else None)) as uow:
        return await make(uow)


# -- every mutation, one entry per changed row ----------------------------------------------


@dataclass
class World:
    db: Database
    admin: Person
    alice: Person

    async def post(self, **values: Any) -> Post:
        post: Post = await written(self.db, self.alice, lambda uow: create_post(uow, **values))
        return post

    async def tag_id(self, post: Post | None = None) -> str:
        async def make(uow: UnitOfWork) -> Any:
            tag = await create_tag(uow)
            if post is not None:
                await TagRepository(uow.session).set_post_tags(post.id, [tag.id])
            return tag

        return gid("Tag", (await written(self.db, self.admin, make)).id)

    async def flag(self, *, override_for: Person | None = None) -> FeatureFlag:
        async def make(uow: UnitOfWork) -> FeatureFlag:
            flags = FeatureFlagRepository(uow.session)
            flag = await flags.add(FeatureFlag(key="flag", name="Flag"))
            if override_for is not None:
                await FlagOverrideRepository(uow.session).add(
                    FlagOverride(flag_id=flag.id, user_id=override_for.user.id, enabled=True)
                )
            return flag

        flag: FeatureFlag = await written(self.db, self.admin, make)
        return flag


@dataclass
class Call:
    input: dict[str, Any]
    caller: Person | None
    expected: list[tuple[str, str]]  # (entity type, action) of each changed row
    actor: Person | None = None  # who the entries name; the caller unless said


Case = Callable[[World], Awaitable[Call]]
# Mutations that need nothing arranged beyond admin and alice.
PLAIN: dict[str, Callable[[World], Call]] = {
    "createUser": lambda w: Call({"email": "new@example.com", "username": "newbie"},
                                 w.admin, [("users", "create")]),
    "updateUser": lambda w: Call({"id": w.alice.id, "fullName": "Al"}, w.admin,
                                 [("users", "update")]),
    "deactivateUser": lambda w: Call({"id": w.alice.id}, w.admin, [("users", "update")]),
    "eraseUser": lambda w: Call({"userId": w.alice.id}, w.admin,
                                [("users", "erase"), ("api_tokens", "delete")]),
    "createApiToken": lambda w: Call({"name": "ci"}, w.alice, [("api_tokens", "create")]),
    "createTag": lambda w: Call({"name": "fresh"}, w.admin, [("tags", "create")]),
    "createFeatureFlag": lambda w: Call({"key": "fresh", "name": "Fresh"}, w.admin,
                                        [("feature_flags", "create")]),
}  # fmt: skip


def _plain(make: Callable[[World], Call]) -> Case:
    async def arrange(w: World) -> Call:
        return make(w)

    return arrange


CASES: dict[str, Case] = {name: _plain(make) for name, make in PLAIN.items()}


def case(name: str) -> Callable[[Case], Case]:
    def register(arrange: Case) -> Case:
        CASES[name] = arrange
        return arrange

    return register


@case("login")
async def _login(w: World) -> Call:
    async def set_password(uow: UnitOfWork) -> None:
        users = UserRepository(uow.session)
        user = await users.get_or_raise(w.alice.user.id)
        await users.update(user, {"password_hash": hash_password(PASSWORD)})

    await written(w.db, None, set_password)
    input = {"email": "alice@example.com", "password": PASSWORD}
    return Call(input, None, [("api_tokens", "create")], actor=w.alice)


@case("revokeApiToken")
async def _revoke_api_token(w: World) -> Call:
    secret = new_token()
    row = ApiToken(user_id=w.alice.user.id, name="old", token_hash=secret.hash, prefix="aq_x")
    token = await written(w.db, w.alice, lambda uow: ApiTokenRepository(uow.session).add(row))
    return Call({"id": gid("ApiToken", token.id)}, w.alice, [("api_tokens", "update")])


@case("createPost")
async def _create_post(w: World) -> Call:
    tags = [await w.tag_id(), await w.tag_id()]
    expected = [("posts", "create"), ("post_tags", "create"), ("post_tags", "create")]
    return Call({"title": "Hello", "tagIds": tags}, w.alice, expected)


def post_case(name: str, action: str, **input: Any) -> None:
    async def arrange(w: World) -> Call:
        post = await w.post()
        if action == "restore":
            await written(w.db, w.alice, lambda uow: _soft_delete(uow, post))
        return Call({"id": gid("Post", post.id), **input}, w.alice, [("posts", action)])

    CASES[name] = arrange


async def _soft_delete(uow: UnitOfWork, row: Post | Comment | Bookmark) -> None:
    rows = repository_for(type(row))(uow.session)
    await rows.soft_delete(await rows.get_or_raise(row.id))


post_case("updatePost", "update", title="Renamed")
post_case("publishPost", "update")
post_case("deletePost", "soft_delete")
post_case("restorePost", "restore")


@case("setPostTags")
async def _set_post_tags(w: World) -> Call:
    post = await w.post()
    await w.tag_id(post)
    input = {"postId": gid("Post", post.id), "tagIds": [await w.tag_id()]}
    return Call(input, w.alice, [("post_tags", "delete"), ("post_tags", "create")])


@case("createComment")
async def _create_comment(w: World) -> Call:
    post = await w.post()
    return Call({"postId": gid("Post", post.id), "body": "Hi"}, w.alice, [("comments", "create")])


def owned_case(
    name: str, action: str, make: Callable[[UnitOfWork, Post], Awaitable[Any]], **input: Any
) -> None:
    """A mutation on a row alice made on a post of hers (after deleting it, to restore)."""

    async def arrange(w: World) -> Call:
        post = await w.post()
        row = await written(w.db, w.alice, lambda uow: make(uow, post))
        if action == "restore":
            await written(w.db, w.alice, lambda uow: _soft_delete(uow, row))
        row_id = gid(type(row).__name__, row.id)
        return Call({"id": row_id, **input}, w.alice, [(row.__tablename__, action)])

    CASES[name] = arrange


async def _bookmark(uow: UnitOfWork, post: Post) -> Bookmark:
    return await repository_for(Bookmark)(uow.session).add(Bookmark(post_id=post.id))


owned_case("updateComment", "update", create_comment, body="Edited")
owned_case("deleteComment", "soft_delete", create_comment)
owned_case("restoreComment", "restore", create_comment)


@case("createBookmark")
async def _create_bookmark(w: World) -> Call:
    post = await w.post()
    return Call({"postId": gid("Post", post.id)}, w.alice, [("bookmarks", "create")])


owned_case("updateBookmark", "update", _bookmark, note="Later")
owned_case("deleteBookmark", "soft_delete", _bookmark)
owned_case("restoreBookmark", "restore", _bookmark)


@case("updateTag")
async def _update_tag(w: World) -> Call:
    return Call({"id": await w.tag_id(), "color": "#000000"}, w.admin, [("tags", "update")])


@case("deleteTag")
async def _delete_tag(w: World) -> Call:
    tag = await w.tag_id(await w.post())
    return Call({"id": tag}, w.admin, [("tags", "delete"), ("post_tags", "delete")])


@case("updateFeatureFlag")
async def _update_flag(w: World) -> Call:
    flag = gid("FeatureFlag", (await w.flag()).id)
    return Call({"id": flag, "enabled": True}, w.admin, [("feature_flags", "update")])


@case("deleteFeatureFlag")
async def _delete_flag(w: World) -> Call:
    flag = gid("FeatureFlag", (await w.flag(override_for=w.alice)).id)
    expected = [("feature_flags", "delete"), ("flag_overrides", "delete")]
    return Call({"id": flag}, w.admin, expected)


@case("setFlagOverride")
async def _set_override(w: World) -> Call:
    input = {"flagId": gid("FeatureFlag", (await w.flag()).id), "userId": w.alice.id,
             "enabled": True}  # fmt: skip
    return Call(input, w.admin, [("flag_overrides", "create")])


@case("removeFlagOverride")
async def _remove_override(w: World) -> Call:
    flag = gid("FeatureFlag", (await w.flag(override_for=w.alice)).id)
    input = {"flagId": flag, "userId": w.alice.id}
    return Call(input, w.admin, [("flag_overrides", "delete")])


async def mutation_inputs(client: GraphQLClient) -> dict[str, str]:
    """Every mutation of the schema -> the name of its `input` argument's type."""
    query = """{ __schema { mutationType { fields { name
      args { name type { kind name ofType { kind name } } } } } } }"""
    fields = (await client.execute(query))["__schema"]["mutationType"]["fields"]
    return {f["name"]: f["args"][0]["type"]["ofType"]["name"] for f in fields}


async def test_every_mutation_has_an_audit_case(client: GraphQLClient) -> None:
    assert set(await mutation_inputs(client)) == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
async def test_each_mutation_writes_one_entry_per_changed_row(
    client: GraphQLClient, app_database: Database, admin: Person, alice: Person, name: str
) -> None:
    input_type = (await mutation_inputs(client))[name]
    call = await CASES[name](World(app_database, admin, alice))
    before = {entry.id for entry in await audit_entries(app_database)}

    headers = {"X-Request-ID": REQUEST_ID, "User-Agent": USER_AGENT}
    if call.caller is not None:
        headers["Authorization"] = f"Bearer {call.caller.token}"
    document = f"mutation($input: {input_type}!) {{ {name}(input: $input) {{ __typename }} }}"
    response = await client.http.post(
        "/graphql", json={"query": document, "variables": {"input": call.input}}, headers=headers
    )
    assert response.json()["data"][name]["__typename"].endswith("Success"), response.json()
    assert response.headers["x-request-id"] == REQUEST_ID

    new = [e for e in await opened_entries(app_database) if e.id not in before]
    assert sorted((e.entity_type, e.action) for e in new) == sorted(call.expected)
    rows = {(e.entity_type, e.entity_id, str(e.changes.get("tag_id"))) for e in new}
    assert len(rows) == len(new), "one entry per changed row"
    actor = call.actor or call.caller
    assert actor is not None
    for entry in new:
        assert (entry.request_id, entry.ip_address, entry.user_agent, entry.actor_id) == (
            REQUEST_ID, CLIENT_ADDRESS, USER_AGENT, actor.user.id,
        )  # fmt: skip


# -- reading the log -----------------------------------------------------------------------


async def test_only_superusers_read_the_audit_log(
    client: GraphQLClient, admin: Person, alice: Person
) -> None:
    assert codes(await client.errors(AUDIT_LOG, token=alice.token)) == ["FORBIDDEN"]
    assert codes(await client.errors(AUDIT_LOG)) == ["UNAUTHENTICATED"]
    log = (await client.execute(AUDIT_LOG, token=admin.token))["auditLog"]
    assert log["totalCount"] == len(log["edges"]) > 0


async def test_entries_show_the_request_they_came_from(
    client: GraphQLClient, app_database: Database, admin: Person
) -> None:
    async def create_tag_with(request_id: str | None) -> tuple[str, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {admin.token}", "User-Agent": USER_AGENT}
        if request_id is not None:
            headers["X-Request-ID"] = request_id
        document = 'mutation { createTag(input: {name: "t"}) { ... on TagSuccess { tag { id } } } }'
        response = await client.http.post("/graphql", json={"query": document}, headers=headers)
        tag = response.json()["data"]["createTag"]["tag"]["id"]
        variables = {"filter": {"entityId": tag}}
        log = (await client.execute(AUDIT_LOG, variables, token=admin.token))["auditLog"]
        [edge] = log["edges"]
        return response.headers["x-request-id"], edge["node"]

    async def delete_tag(id: str) -> None:
        document = "mutation($id: ID!) { deleteTag(input: {id: $id}) { __typename } }"
        await client.execute(document, {"id": id}, token=admin.token)

    header, entry = await create_tag_with(REQUEST_ID)
    assert (header, entry["requestId"]) == (REQUEST_ID, REQUEST_ID)
    assert (entry["ipAddress"], entry["userAgent"], entry["actor"]) == (
        CLIENT_ADDRESS, USER_AGENT, {"username": "admin"},
    )  # fmt: skip
    assert {"field": "name", "old": None, "new": "t"} in entry["changes"]
    await delete_tag(entry["entityId"])  # tag names are unique
    for unusable in (None, "has spaces", "x" * 65):  # a fresh id replaces a missing or odd one
        header, entry = await create_tag_with(unusable)
        assert re.fullmatch(r"[0-9a-f]{32}", header)
        assert entry["requestId"] == header
        await delete_tag(entry["entityId"])


async def test_the_audit_log_filters(
    client: GraphQLClient, app_database: Database, admin: Person, alice: Person, bob: Person
) -> None:
    post = await written(app_database, alice, create_post)
    await written(app_database, alice, rename_post(post))
    await written(app_database, bob, create_post)

    async def rename_alice(uow: UnitOfWork) -> None:
        users = UserRepository(uow.session)
        await users.update(await users.get_or_raise(alice.user.id), {"full_name": "Al"})

    await written(app_database, admin, rename_alice)
    everything = list(reversed(await audit_entries(app_database)))  # newest first

    async def listed(**filter: Any) -> list[str]:
        log = (await client.execute(AUDIT_LOG, {"filter": filter}, token=admin.token))["auditLog"]
        assert log["totalCount"] == len(log["edges"])
        return [edge["node"]["id"] for edge in log["edges"]]

    def matching(keep: Callable[[AuditLog], bool]) -> list[str]:
        entries = [e for e in everything if keep(e)]
        assert entries, "a filter that matches nothing proves little"
        return [gid("AuditEntry", e.id) for e in entries]

    by_alice = [e for e in everything if e.actor_id == alice.user.id]
    assert [(e.action, e.entity_id) for e in by_alice] == [
        ("update", str(post.id)), ("create", str(post.id)),
    ]  # fmt: skip
    assert await listed(actorId=alice.id) == matching(lambda e: e.actor_id == alice.user.id)
    assert await listed(entityId=gid("Post", post.id)) == matching(lambda e: e in by_alice)
    alice_row = ("users", str(alice.user.id))
    about_alice = matching(lambda e: (e.entity_type, e.entity_id) == alice_row)
    assert len(about_alice) == 2  # created by the system, renamed by the admin
    assert await listed(entityId=alice.id) == about_alice
    assert await listed(entityType="posts") == matching(lambda e: e.entity_type == "posts")
    assert await listed(action="UPDATE") == matching(lambda e: e.action == "update")
    assert await listed(entityType="posts", actorId=bob.id) == matching(
        lambda e: e.entity_type == "posts" and e.actor_id == bob.user.id
    )
    cutoff = by_alice[0].created_at  # alice's rename
    assert await listed(since=cutoff.isoformat()) == matching(lambda e: e.created_at >= cutoff)
    assert await listed(until=cutoff.isoformat()) == matching(lambda e: e.created_at < cutoff)
    naive = cutoff.replace(tzinfo=None).isoformat()
    for bad in ({"actorId": gid("Post", post.id)}, {"entityId": "garbage!"}, {"since": naive}):
        errors = await client.errors(AUDIT_LOG, {"filter": bad}, token=admin.token)
        assert codes(errors) == ["BAD_USER_INPUT"]


async def test_history_is_for_the_creator_and_superusers(
    client: GraphQLClient, app_database: Database, admin: Person, alice: Person, bob: Person
) -> None:
    published = {"status": PostStatus.PUBLISHED, "published_at": utcnow()}
    post = await written(app_database, alice, lambda uow: create_post(uow, **published))
    await written(app_database, alice, rename_post(post))
    query = """query($id: ID!) { node(id: $id) { id ... on Audited {
      history { totalCount edges { node { action actor { username } } } } } } }"""
    for person in (alice, admin):
        history = await client.execute(query, {"id": gid("Post", post.id)}, token=person.token)
        assert history["node"]["history"]["totalCount"] == 2
        assert [edge["node"] for edge in history["node"]["history"]["edges"]] == [
            {"action": "UPDATE", "actor": {"username": "alice"}},
            {"action": "CREATE", "actor": {"username": "alice"}},
        ]
    errors = await client.errors(query, {"id": gid("Post", post.id)}, token=bob.token)
    assert (codes(errors), errors[0]["path"]) == (["FORBIDDEN"], ["node", "history"])
    assert codes(await client.errors(query, {"id": gid("Post", post.id)})) == ["UNAUTHENTICATED"]
    own = await client.execute(query, {"id": alice.id}, token=alice.token)
    assert own["node"]["history"]["totalCount"] == 1
    errors = await client.errors(query, {"id": alice.id}, token=bob.token)
    assert codes(errors) == ["FORBIDDEN"]


def rename_post(post: Post) -> Callable[[UnitOfWork], Awaitable[None]]:
    async def rename(uow: UnitOfWork) -> None:
        posts = PostRepository(uow.session)
        await posts.update(await posts.get_or_raise(post.id), {"title": "Renamed"})

    return rename


async def test_no_mutation_can_touch_the_audit_log(client: GraphQLClient) -> None:
    query = """{ __schema { mutationType { fields { name
      type { name possibleTypes { name } }
      args { type { ofType { name inputFields { name } } } } } } } }"""
    fields = (await client.execute(query))["__schema"]["mutationType"]["fields"]
    assert len(fields) == len(CASES)
    for mutation in fields:
        assert not re.search("audit|history", mutation["name"], re.IGNORECASE)
        results = {t["name"] for t in mutation["type"]["possibleTypes"]}
        assert "AuditEntry" not in results
        for argument in mutation["args"]:
            assert "Audit" not in argument["type"]["ofType"]["name"]
