"""``AuditEntry.changes`` in the schema's words (:mod:`gql.schema.vocabulary`): fields
named as the object's type names them, enum values by name, references as global ids
that ``node(id:)`` resolves, secrets still redacted, translated when read from entries
stored in the database's words."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from graphql import GraphQLEnumType, GraphQLObjectType, get_named_type

from gql.schema.build import build_schema
from gql.schema.ids import parse_global_id, to_global_id
from gql.settings import Settings
from persistence.audit import AuditContext
from persistence.base import utcnow
from persistence.engine import Database
from persistence.models import Post, PostStatus, Tag
from persistence.repositories.post import PostRepository
from persistence.repositories.tag import TagRepository
from persistence.unit_of_work import UnitOfWork
from tests.gql.conftest import Person
from tests.gql.factories import (
    changes,
    create_comment,
    create_post,
    create_tag,
    history,
    mutate,
    succeed,
)
from tests.gql.test_audit_log import CASES, World, mutation_inputs
from tests.support.audit import audit_entries
from tests.support.graphql import GraphQLClient

SCHEMA = build_schema(Settings.model_construct())._schema
REDACTED = "[redacted]"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id ... on Tag { name } } }"
# Stored values that no field of their object's type shows, named by the rule of
# gql.schema.vocabulary. A new one fails below until it is added here, deliberately;
# the soft-delete mark (`deletedAt`) is allowed wherever `restore<Type>` exists.
UNSHOWN = {"User": {"password"}, "ApiToken": {"token", "user"}}


async def resolved(client: GraphQLClient, who: Person, ids: list[str]) -> list[Any]:
    return list((await client.execute(NODES, {"ids": ids}, token=who.token))["nodes"])


def is_date_time(value: str) -> bool:
    return datetime.fromisoformat(value).utcoffset() is not None


async def test_a_post_s_history_names_fields_enums_and_tags_as_the_schema_does(
    client: GraphQLClient, admin: Person, alice: Person
) -> None:
    old_tag, new_tag = [await create_tag(client, admin, name=name) for name in ("old", "new")]
    post = await create_post(client, alice, title="Draft", tagIds=[old_tag["id"]])
    published = await succeed(client, alice, "publishPost", id=post["id"])
    await succeed(client, alice, "setPostTags", postId=post["id"], tagIds=[new_tag["id"]])
    assert (await mutate(client, alice, "deletePost", id=post["id"]))["deletedId"] == post["id"]
    await succeed(client, alice, "restorePost", id=post["id"])

    restored, deleted, *relinked, publish, linked, created = await history(
        client, alice, post["id"]
    )

    assert changes(created) == {
        "title": [None, "Draft"], "slug": [None, "draft"], "body": [None, ""],
        "status": [None, "DRAFT"],
    }  # fmt: skip
    assert changes(linked) == {"tags": [None, old_tag["id"]]}
    assert changes(publish) == {
        "status": ["DRAFT", "PUBLISHED"], "publishedAt": [None, published["publishedAt"]],
    }  # fmt: skip
    assert sorted((e["action"], changes(e)) for e in relinked) == [
        ("CREATE", {"tags": [None, new_tag["id"]]}), ("DELETE", {"tags": [old_tag["id"], None]}),
    ]  # fmt: skip
    assert deleted["action"] == "SOFT_DELETE"
    [(field, (before, mark))] = changes(deleted).items()
    assert (field, before, is_date_time(mark)) == ("deletedAt", None, True)
    assert (restored["action"], changes(restored)) == ("RESTORE", {"deletedAt": [mark, None]})
    tags = await resolved(client, alice, [old_tag["id"], new_tag["id"]])
    assert [(t["__typename"], t["name"]) for t in tags] == [("Tag", "old"), ("Tag", "new")]


async def test_references_are_global_ids_that_node_resolves(
    client: GraphQLClient, admin: Person, alice: Person
) -> None:
    post = await create_post(client, alice, publish=True)
    comment = await create_comment(client, alice, post["id"])
    bookmark = await succeed(client, alice, "createBookmark", postId=post["id"])
    flag = await succeed(client, admin, "createFeatureFlag", key="beta", name="Beta")
    override = await succeed(
        client, admin, "setFlagOverride", flagId=flag["id"], userId=alice.id, enabled=True
    )
    cases = [
        (alice, comment, {"post": post["id"]}),
        (alice, bookmark, {"post": post["id"]}),
        (admin, override, {"flag": flag["id"], "user": alice.id}),
    ]
    for who, made, references in cases:
        [created] = await history(client, who, made["id"])
        assert {field: changes(created)[field] for field in references} == {
            field: [None, target] for field, target in references.items()
        }
        found = await resolved(client, who, list(references.values()))
        assert [node["id"] for node in found] == list(references.values())


async def test_secrets_stay_redacted_under_the_name_clients_know(
    client: GraphQLClient, admin: Person, alice: Person
) -> None:
    for password in ("a much longer secret", "and another one"):
        await succeed(client, alice, "updateUser", id=alice.id, password=password)
    newest, first, _created = await history(client, alice, alice.id)
    assert changes(first) == {"password": [None, REDACTED]}
    assert changes(newest) == {"password": [REDACTED, REDACTED]}

    document = 'mutation { createApiToken(input: {name: "ci"}) { __typename } }'
    assert (await client.execute(document, token=alice.token))["createApiToken"] == {
        "__typename": "TokenSuccess"
    }
    [entry] = await audit_log_of(client, admin, entityType="api_tokens", actorId=alice.id)
    assert changes(entry)["token"] == [None, REDACTED]
    assert changes(entry)["user"] == [None, alice.id]
    assert [node["id"] for node in await resolved(client, admin, [alice.id])] == [alice.id]


async def test_entries_stored_in_the_database_s_words_read_in_the_schema_s(
    client: GraphQLClient, app_database: Database, alice: Person
) -> None:
    """The unit of work still writes column names, stored values and keys; only reading
    translates, so entries written before this change read the same way."""
    async with UnitOfWork(app_database, AuditContext(alice.user.id)) as uow:
        tag = await TagRepository(uow.session).add(Tag(name="stored"))
        post = await PostRepository(uow.session).add(
            Post(title="Stored", slug="stored", status=PostStatus.PUBLISHED, published_at=utcnow())
        )
        await TagRepository(uow.session).set_post_tags(post.id, [tag.id])
    stored = {entry.entity_type: entry for entry in await audit_entries(app_database, post.id)}
    assert stored["posts"].changes["status"] == [None, "published"]
    published_at = stored["posts"].changes["published_at"][1]
    assert stored["post_tags"].changes == {"tag_id": [None, str(tag.id)]}

    post_id = to_global_id("Post", post.id)
    read = {entry["entityType"]: entry for entry in await history(client, alice, post_id)}
    assert changes(read["posts"])["status"] == [None, "PUBLISHED"]
    _, shown = changes(read["posts"])["publishedAt"]
    assert datetime.fromisoformat(shown) == datetime.fromisoformat(published_at)
    assert changes(read["post_tags"]) == {"tags": [None, to_global_id("Tag", tag.id)]}
    assert len(changes(read["posts"])) == len(stored["posts"].changes)


async def audit_log_of(client: GraphQLClient, admin: Person, **filter: Any) -> list[Any]:
    document = """query($filter: AuditLogFilter) { auditLog(first: 100, filter: $filter) {
      edges { node { action entityType entityId changes { field old new } } } } }"""
    data = await client.execute(document, {"filter": filter}, token=admin.token)
    return [edge["node"] for edge in data["auditLog"]["edges"]]


@pytest.mark.parametrize("name", sorted(CASES))
async def test_every_mutation_s_entries_name_fields_of_their_object_s_type(
    client: GraphQLClient, app_database: Database, admin: Person, alice: Person, name: str
) -> None:
    call = await CASES[name](World(app_database, admin, alice))
    input_type = (await mutation_inputs(client))[name]
    document = f"mutation($input: {input_type}!) {{ {name}(input: $input) {{ __typename }} }}"
    token = call.caller.token if call.caller else None
    result = await client.execute(document, {"input": call.input}, token=token)
    assert result[name]["__typename"].endswith("Success"), result

    for entry in await audit_log_of(client, admin):
        type_name, _ = parse_global_id(entry["entityId"])
        for change in entry["changes"]:
            check_change(type_name, change)


def check_change(type_name: str, change: dict[str, Any]) -> None:
    graphql_type, mutations = SCHEMA.type_map[type_name], SCHEMA.mutation_type
    assert isinstance(graphql_type, GraphQLObjectType)
    assert mutations is not None
    field, values = change["field"], [change["old"], change["new"]]
    if field not in graphql_type.fields:
        unshown = UNSHOWN.get(type_name, set())
        if f"restore{type_name}" in mutations.fields:
            unshown = unshown | {"deletedAt"}
        assert field in unshown, f"{type_name} has no field {field!r}"
        return
    shown = get_named_type(graphql_type.fields[field].type)
    for value in (value for value in values if value is not None):
        if isinstance(shown, GraphQLEnumType):
            assert value in shown.values, (type_name, field, value)
        elif isinstance(shown, GraphQLObjectType):
            assert parse_global_id(value)[0] == shown.name, (type_name, field, value)
