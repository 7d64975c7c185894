"""Arranging data for the end-to-end tests.

Most helpers go through GraphQL mutations, as a client would, and fail the test if the
mutation does not succeed. ``seed_blog`` writes many rows at once through repositories
and units of work (still stamped and audited), for tests that need volume.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from graphql import GraphQLObjectType, get_named_type, is_leaf_type

from persistence.audit import AuditContext
from persistence.base import utcnow
from persistence.engine import Database
from persistence.models import Comment, Post, PostStatus, PostTag, Tag, User
from persistence.repositories.comment import CommentRepository
from persistence.repositories.post import PostRepository
from persistence.repositories.tag import TagRepository
from persistence.repositories.user import UserRepository
from persistence.unit_of_work import UnitOfWork
from tests.gql.conftest import Person
from tests.support.audit import audit_entries
from tests.support.graphql import GraphQLClient
from tests.support.schema import input_type, success_type

_numbers = itertools.count(1)

AUDITED = "id version createdAt updatedAt createdBy { username } updatedBy { username }"
POST = f"{AUDITED} title slug body status publishedAt tags {{ name }}"
COMMENT = f"{AUDITED} body post {{ id }}"
TAG = f"{AUDITED} name color"
# AlreadyExistsError.field is non-null and ValidationError.field is not: GraphQL needs
# two names for them in one selection; ``mutate`` puts them back under ``field``.
ERROR = (
    "message code ... on ValidationError { field } "
    "... on AlreadyExistsError { taken: field } ... on ConflictError { currentVersion }"
)
HISTORY = """history { totalCount edges { node { action entityType actor { username }
    changes { field old new } } } }"""


_FIELDS = {"Post": POST, "Comment": COMMENT, "Tag": TAG}


def _selection(type_: GraphQLObjectType) -> str:
    """The fields a test reads of an object: the inventory above, or else its audit
    fields and its own scalars, so a new entity needs no entry here."""
    if type_.name in _FIELDS:
        return _FIELDS[type_.name]
    scalars = (name for name, f in type_.fields.items() if is_leaf_type(get_named_type(f.type)))
    return " ".join((AUDITED, *(name for name in scalars if name not in AUDITED.split())))


def _success(name: str) -> str:
    """The selection on a mutation's success type: the object, or the deleted id."""
    success = success_type(name)
    ((field, definition),) = success.fields.items()
    if field == "deletedId":
        return f"... on {success.name} {{ deletedId }}"
    returned = get_named_type(definition.type)
    assert isinstance(returned, GraphQLObjectType), name
    return f"... on {success.name} {{ {field} {{ {_selection(returned)} }} }}"


async def mutate(client: GraphQLClient, who: Person, name: str, /, **input: Any) -> dict[str, Any]:
    """Mutation ``name`` with ``input``, as ``who``: its payload, with ``__typename``, the
    object (or ``deletedId``) on success and the fields of any error."""
    document = f"""mutation($input: {input_type(name)}) {{ {name}(input: $input) {{
        __typename ... on Error {{ {ERROR} }} {_success(name)} }} }}"""
    data = await client.execute(document, {"input": input}, token=who.token)
    payload: dict[str, Any] = data[name]
    if "taken" in payload:
        payload["field"] = payload.pop("taken")
    return payload


async def succeed(client: GraphQLClient, who: Person, name: str, /, **input: Any) -> Any:
    """The object a mutation that must succeed returns (or its ``deletedId``)."""
    payload = await mutate(client, who, name, **input)
    assert payload["__typename"].endswith("Success"), payload
    return next(value for key, value in payload.items() if key != "__typename")


async def create_post(
    client: GraphQLClient, author: Person, *, publish: bool = False, **input: Any
) -> dict[str, Any]:
    """A post by ``author`` (a draft unless ``publish``), as the API returns it."""
    input.setdefault("title", f"Post number {next(_numbers)}")
    post: dict[str, Any] = await succeed(client, author, "createPost", **input)
    if publish:
        post = await succeed(client, author, "publishPost", id=post["id"])
    return post


async def create_tag(client: GraphQLClient, admin: Person, **input: Any) -> dict[str, Any]:
    input.setdefault("name", f"tag-{next(_numbers)}")
    tag: dict[str, Any] = await succeed(client, admin, "createTag", **input)
    return tag


async def create_comment(
    client: GraphQLClient, author: Person, post_id: str, body: str = "Nice post."
) -> dict[str, Any]:
    comment: dict[str, Any] = await succeed(
        client, author, "createComment", postId=post_id, body=body
    )
    return comment


POSTS = """query($first: Int, $after: String, $last: Int, $before: String, $filter: PostFilter,
    $orderBy: [PostOrder!]) {
  posts(first: $first, after: $after, last: $last, before: $before, filter: $filter,
        orderBy: $orderBy) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id title } } } }"""


async def list_posts(client: GraphQLClient, who: Person | None = None, **variables: Any) -> Any:
    """``posts`` as ``who`` (anonymous if None) sees them, with these arguments."""
    data = await client.execute(POSTS, variables, token=who.token if who else None)
    return data["posts"]


def titles(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["title"] for edge in connection["edges"]]


async def audit_count(database: Database) -> int:
    return len(await audit_entries(database))


async def history(client: GraphQLClient, who: Person, node_id: str) -> list[dict[str, Any]]:
    """The audit entries of a node, newest first, as ``history`` shows them to ``who``."""
    data = await client.execute(
        f"query($id: ID!) {{ node(id: $id) {{ ... on Audited {{ {HISTORY} }} }} }}",
        {"id": node_id},
        token=who.token,
    )
    connection = data["node"]["history"]
    entries = [edge["node"] for edge in connection["edges"]]
    assert connection["totalCount"] == len(entries)
    return entries


def changes(entry: dict[str, Any]) -> dict[str, list[Any]]:
    """An audit entry's changes as ``{field: [old, new]}``."""
    return {c["field"]: [c["old"], c["new"]] for c in entry["changes"]}


# -- volume, through repositories --------------------------------------------------------


async def add_users(database: Database, count: int, prefix: str) -> list[User]:
    """``count`` users named ``<prefix>00``, ``<prefix>01``..., in one statement."""
    async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
        users = [
            User(email=f"{prefix}{i:02}@example.com", username=f"{prefix}{i:02}", full_name=prefix)
            for i in range(count)
        ]
        return list(await UserRepository(uow.session).add_many(users))


async def seed_blog(
    database: Database,
    authors: Sequence[User],
    commenters: Sequence[User],
    *,
    posts_per_author: int,
    comments_per_post: int = 4,
    tags_per_post: int = 2,
) -> None:
    """Published posts, each with tags and comments, written in bulk (still stamped and
    audited): one unit of work per actor and round. Authors take turns, two posts at a
    time, so any page of the newest posts has several authors; comments are written by
    the commenters in turn."""
    async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
        n = next(_numbers)
        tags = await TagRepository(uow.session).add_many(
            [Tag(name=f"seed-{n}-{i}") for i in range(tags_per_post * 3)]
        )
    posts: list[Post] = []
    for start in range(0, posts_per_author, 2):
        for author in authors:
            async with UnitOfWork(database, AuditContext(actor_id=author.id)) as uow:
                batch = [
                    Post(
                        title=f"{author.username} {i}",
                        slug=f"s{n}-{author.id}-{i}",
                        body="Seeded.",
                        status=PostStatus.PUBLISHED,
                        published_at=utcnow(),
                    )
                    for i in range(start, min(start + 2, posts_per_author))
                ]
                posts += await PostRepository(uow.session).add_many(batch)
                links = [
                    PostTag(post_id=post.id, tag_id=tags[(len(posts) + i + k) % len(tags)].id)
                    for i, post in enumerate(batch)
                    for k in range(tags_per_post)
                ]
                uow.session.add_all(links)
    for w, writer in enumerate(commenters):
        async with UnitOfWork(database, AuditContext(actor_id=writer.id)) as uow:
            comments = [
                Comment(post_id=post.id, body=f"Comment {c} by {writer.username}")
                for post in posts
                for c in range(comments_per_post)
                if c % len(commenters) == w
            ]
            await CommentRepository(uow.session).add_many(comments)


async def audit_log(client: GraphQLClient, admin: Person, entity_id: str) -> list[dict[str, Any]]:
    """The entries ``auditLog`` shows a superuser for one object, newest first."""
    data = await client.execute(
        """query($id: ID!) { auditLog(first: 100, filter: {entityId: $id}) { totalCount
            edges { node { action entityType entityId actor { username }
            changes { field old new } } } } }""",
        {"id": entity_id},
        token=admin.token,
    )
    connection = data["auditLog"]
    entries = [edge["node"] for edge in connection["edges"]]
    assert connection["totalCount"] == len(entries)
    return entries
