"""``node(id:)`` and ``nodes(ids:)``: every type by its global id, and only what the viewer
may see."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from gql.schema.ids import to_global_id
from persistence.audit import AuditContext
from persistence.base import utcnow
from persistence.engine import Database
from persistence.models import ApiToken, FeatureFlag, FlagOverride, PostStatus
from persistence.repositories.api_token import ApiTokenRepository
from persistence.repositories.feature_flag import FeatureFlagRepository, FlagOverrideRepository
from persistence.repositories.post import PostRepository
from persistence.unit_of_work import UnitOfWork
from tests.factories.post import create_comment, create_post
from tests.factories.tag import create_tag
from tests.gql.conftest import Person
from tests.support.audit import audit_entries
from tests.support.graphql import GraphQLClient, codes

FIELDS = """__typename id
  ... on User { username } ... on Post { title } ... on Comment { body }
  ... on Tag { name } ... on FeatureFlag { key } ... on FlagOverride { enabled }
  ... on AuditEntry { action entityType }"""
NODE = f"query($id: ID!) {{ node(id: $id) {{ {FIELDS} }} }}"
NODES = f"query($ids: [ID!]!) {{ nodes(ids: $ids) {{ {FIELDS} }} }}"


@dataclass
class Objects:
    """One object of every node type (global id -> what a superuser reads), plus ids
    that some viewers may not see."""

    expected: dict[str, dict[str, Any]]
    draft: str
    deleted: str
    api_token: str

    def id_of(self, type_name: str) -> str:
        return next(i for i, node in self.expected.items() if node["__typename"] == type_name)


@pytest.fixture
async def objects(app_database: Database, admin: Person, alice: Person) -> Objects:
    async with UnitOfWork(app_database, AuditContext(actor_id=alice.user.id)) as uow:
        post = await create_post(uow, title="Public", status=PostStatus.PUBLISHED,
                                 published_at=utcnow())  # fmt: skip
        comment = await create_comment(uow, post, body="First!")
        draft = await create_post(uow, title="Draft")
        deleted = await create_post(uow, title="Gone", status=PostStatus.PUBLISHED,
                                    published_at=utcnow())  # fmt: skip
        await PostRepository(uow.session).soft_delete(deleted)
        token = await ApiTokenRepository(uow.session).add(
            ApiToken(user_id=alice.user.id, name="n", token_hash="0" * 64, prefix="aq_0")
        )
    async with UnitOfWork(app_database, AuditContext(actor_id=admin.user.id)) as uow:
        tag = await create_tag(uow, name="news")
        flag = await FeatureFlagRepository(uow.session).add(FeatureFlag(key="beta", name="Beta"))
        override = await FlagOverrideRepository(uow.session).add(
            FlagOverride(flag_id=flag.id, user_id=alice.user.id, enabled=True)
        )
    [entry] = await audit_entries(app_database, tag.id)
    nodes: list[tuple[str, Any, dict[str, Any]]] = [
        ("User", alice.user.id, {"username": "alice"}),
        ("Post", post.id, {"title": "Public"}),
        ("Comment", comment.id, {"body": "First!"}),
        ("Tag", tag.id, {"name": "news"}),
        ("FeatureFlag", flag.id, {"key": "beta"}),
        ("FlagOverride", override.id, {"enabled": True}),
        ("AuditEntry", entry.id, {"action": "CREATE", "entityType": "tags"}),
    ]
    expected = {
        to_global_id(name, key): {"__typename": name, "id": to_global_id(name, key), **fields}
        for name, key, fields in nodes
    }
    return Objects(expected, to_global_id("Post", draft.id), to_global_id("Post", deleted.id),
                   to_global_id("ApiToken", token.id))  # fmt: skip


NODE_TYPES = ["User", "Post", "Comment", "Tag", "FeatureFlag", "FlagOverride", "AuditEntry"]


@pytest.mark.parametrize("type_name", NODE_TYPES)
async def test_node_returns_every_type(
    client: GraphQLClient, objects: Objects, admin: Person, type_name: str
) -> None:
    id = objects.id_of(type_name)
    node = (await client.execute(NODE, {"id": id}, token=admin.token))["node"]
    assert node == objects.expected[id]


async def test_nodes_returns_every_type_in_order(
    client: GraphQLClient, objects: Objects, admin: Person
) -> None:
    ids = list(reversed(objects.expected))
    nodes = (await client.execute(NODES, {"ids": ids}, token=admin.token))["nodes"]
    assert nodes == [objects.expected[id] for id in ids]


@pytest.mark.parametrize("viewer", ["anonymous", "bob"])
async def test_nodes_are_null_where_the_viewer_may_not_see(
    client: GraphQLClient, objects: Objects, bob: Person, viewer: str
) -> None:
    hidden = {"FlagOverride", "AuditEntry"}
    ids = [*objects.expected, objects.draft, objects.deleted]
    token = bob.token if viewer == "bob" else None
    nodes = (await client.execute(NODES, {"ids": ids}, token=token))["nodes"]
    visible = [None if node["__typename"] in hidden else node for node in objects.expected.values()]
    assert nodes == [*visible, None, None]
    for id in (objects.id_of("FlagOverride"), objects.id_of("AuditEntry"), objects.draft):
        assert (await client.execute(NODE, {"id": id}, token=token))["node"] is None


async def test_authors_see_their_drafts_but_not_deleted_posts(
    client: GraphQLClient, objects: Objects, alice: Person
) -> None:
    ids = [objects.draft, objects.deleted]
    assert (await client.execute(NODES, {"ids": ids}, token=alice.token))["nodes"] == [
        {"__typename": "Post", "id": objects.draft, "title": "Draft"},
        None,
    ]


async def test_unknown_well_formed_ids_are_null(
    client: GraphQLClient, objects: Objects, admin: Person
) -> None:
    unknown = [
        to_global_id("Post", uuid.uuid4()),
        to_global_id("User", 999_999),
        to_global_id("AuditEntry", uuid.uuid4()),
        to_global_id("Nothing", "1"),
        objects.api_token,  # not a Node type: its id is not looked up
    ]
    for id in unknown:
        assert (await client.execute(NODE, {"id": id}, token=admin.token))["node"] is None
    nodes = await client.execute(NODES, {"ids": unknown}, token=admin.token)
    assert nodes["nodes"] == [None] * len(unknown)


def b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode()


@pytest.mark.parametrize(
    "id",
    ["!!!", "abc", "", b64("no separator"), b64("Post:"), b64(":1"),
     to_global_id("Post", "not-a-uuid"), to_global_id("User", "12a"), to_global_id("User", "-1"),
     to_global_id("User", "9" * 30)],
)  # fmt: skip
async def test_malformed_ids_are_input_errors(
    client: GraphQLClient, objects: Objects, admin: Person, id: str
) -> None:
    assert codes(await client.errors(NODE, {"id": id}, token=admin.token)) == ["BAD_USER_INPUT"]
    ids = [objects.id_of("Tag"), id]
    assert codes(await client.errors(NODES, {"ids": ids}, token=admin.token)) == ["BAD_USER_INPUT"]


async def test_nodes_takes_at_most_100_ids(
    client: GraphQLClient, objects: Objects, admin: Person
) -> None:
    tag = objects.id_of("Tag")
    nodes = (await client.execute(NODES, {"ids": [tag] * 100}, token=admin.token))["nodes"]
    assert nodes == [objects.expected[tag]] * 100
    errors = await client.errors(NODES, {"ids": [tag] * 101}, token=admin.token)
    assert codes(errors) == ["BAD_USER_INPUT"]
