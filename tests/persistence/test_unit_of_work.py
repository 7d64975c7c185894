"""Every write path stamps the actor and appends audit entries in the same transaction."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.errors import AlreadyExistsError
from persistence.models import ApiToken, AuditLog, Post, PostStatus, Tag, User
from persistence.repositories.api_token import ApiTokenRepository
from persistence.repositories.post import PostRepository
from persistence.repositories.tag import TagRepository
from persistence.repositories.user import UserRepository
from persistence.unit_of_work import UnitOfWork
from tests.factories.post import create_post
from tests.factories.tag import create_tag
from tests.factories.user import create_user
from tests.support.audit import audit_entries, opened_entries


@pytest.fixture
async def actor(database: Database) -> User:
    async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
        return await create_user(uow)


def uow_as(database: Database, actor: User | None, **context: Any) -> UnitOfWork:
    return UnitOfWork(database, AuditContext(actor_id=actor.id if actor else None, **context))


async def test_create_stamps_the_actor_and_records_the_values(
    database: Database, actor: User
) -> None:
    context = {"request_id": "req-1", "ip_address": "192.0.2.7", "user_agent": "pytest"}
    async with uow_as(database, actor, **context) as uow:
        post = await create_post(uow, title="Hello", slug="hello", body="World")

    assert (post.created_by_id, post.updated_by_id, post.version) == (actor.id, actor.id, 1)
    [entry] = await opened_entries(database, post.id)
    assert (entry.action, entry.entity_type, entry.actor_id) == ("create", "posts", actor.id)
    assert (entry.request_id, entry.ip_address, entry.user_agent) == (
        "req-1",
        "192.0.2.7",
        "pytest",
    )
    assert entry.changes == {
        "title": [None, "Hello"],
        "slug": [None, "hello"],
        "body": [None, "World"],
        "status": [None, "draft"],
    }


async def test_update_stamps_the_updater_bumps_the_version_and_records_old_and_new(
    database: Database, actor: User
) -> None:
    async with uow_as(database, actor) as uow:
        post = await create_post(uow, title="Before")
    async with uow_as(database, None) as uow:
        author = await create_user(uow)
    async with uow_as(database, author) as uow:
        posts = PostRepository(uow.session)
        post = await posts.get_or_raise(post.id, for_update=True)
        await posts.update(post, {"title": "After"}, expected_version=1)

    assert (post.created_by_id, post.updated_by_id, post.version) == (actor.id, author.id, 2)
    entries = await audit_entries(database, post.id)
    assert [(e.action, e.actor_id) for e in entries] == [
        ("create", actor.id),
        ("update", author.id),
    ]
    assert entries[1].changes == {"title": ["Before", "After"]}


async def test_an_update_that_changes_nothing_writes_nothing(
    database: Database, actor: User
) -> None:
    async with uow_as(database, actor) as uow:
        post = await create_post(uow, title="Same")
    async with uow_as(database, actor) as uow:
        posts = PostRepository(uow.session)
        await posts.update(await posts.get_or_raise(post.id), {"title": "Same"})

    assert [e.action for e in await audit_entries(database, post.id)] == ["create"]
    async with database.reader() as session:
        assert (await PostRepository(session).get_or_raise(post.id)).version == 1


async def test_soft_delete_and_restore_are_stamped_and_recorded(
    database: Database, actor: User
) -> None:
    async with uow_as(database, actor) as uow:
        post = await create_post(uow)
    async with uow_as(database, actor) as uow:
        posts = PostRepository(uow.session)
        post = await posts.soft_delete(await posts.get_or_raise(post.id), expected_version=1)
    assert (post.deleted_by_id, post.version) == (actor.id, 2)

    async with uow_as(database, actor) as uow:
        posts = PostRepository(uow.session)
        post = await posts.restore(await posts.get_or_raise(post.id, include_deleted=True))
    assert (post.deleted_at, post.deleted_by_id, post.version) == (None, None, 3)

    entries = await audit_entries(database, post.id)
    assert [e.action for e in entries] == ["create", "soft_delete", "restore"]
    assert entries[1].changes["deleted_at"][0] is None
    assert entries[2].changes["deleted_at"][1] is None


async def test_delete_records_the_last_values(database: Database, actor: User) -> None:
    async with uow_as(database, actor) as uow:
        tag = await create_tag(uow, name="gone", color="#abcdef")
    async with uow_as(database, actor) as uow:
        tags = TagRepository(uow.session)
        await tags.delete(await tags.get_or_raise(tag.id), expected_version=1)

    entries = await audit_entries(database, tag.id)
    assert [e.action for e in entries] == ["create", "delete"]
    assert entries[1].changes == {"name": ["gone", None], "color": ["#abcdef", None]}
    async with database.reader() as session:
        assert await TagRepository(session).get(tag.id) is None


async def test_bulk_insert_is_stamped_and_audited_row_by_row(
    database: Database, actor: User
) -> None:
    async with uow_as(database, actor, request_id="bulk") as uow:
        posts = await PostRepository(uow.session).add_many(
            [Post(title=f"Bulk {n}", slug=f"bulk-{n}") for n in range(50)]
        )

    assert len({post.id for post in posts}) == 50
    assert all(p.created_by_id == actor.id and p.version == 1 for p in posts)
    async with database.reader() as session:
        stored = await PostRepository(session).get_many([p.id for p in posts])
    assert [p.title for p in stored if p] == [f"Bulk {n}" for n in range(50)]
    assert all(p.created_by_id == p.updated_by_id == actor.id for p in stored if p)
    entries = await audit_entries(database)
    bulk = [e for e in entries if e.request_id == "bulk"]
    assert sorted(e.entity_id for e in bulk) == sorted(str(p.id) for p in posts)
    assert {e.action for e in bulk} == {"create"}
    assert bulk[0].changes["status"] == [None, "draft"]


async def test_a_flushed_row_and_a_bulk_inserted_row_get_the_same_stamps_and_entry(
    database: Database, actor: User
) -> None:
    async with uow_as(database, actor, request_id="same") as uow:
        uow.session.add(Post(title="Twin", slug="flushed", body="b"))
        await uow.session.flush()
        await PostRepository(uow.session).add_many([Post(title="Twin", slug="bulk", body="b")])

    async with database.reader() as session:
        rows = (await session.scalars(select(Post).where(Post.title == "Twin"))).all()
    stamps = {(p.created_by_id, p.updated_by_id, p.version, p.deleted_by_id) for p in rows}
    assert stamps == {(actor.id, actor.id, 1, None)}
    flushed, bulk = sorted(
        (e for e in await audit_entries(database) if e.request_id == "same"),
        key=lambda e: e.changes["slug"][1] != "flushed",
    )
    assert {key: value for key, value in flushed.changes.items() if key != "slug"} == {
        key: value for key, value in bulk.changes.items() if key != "slug"
    }
    assert set(flushed.changes) == {"title", "slug", "body", "status"}
    assert (
        (flushed.action, flushed.actor_id) == (bulk.action, bulk.actor_id) == ("create", actor.id)
    )


async def test_bulk_insert_reads_back_database_generated_keys(database: Database) -> None:
    async with uow_as(database, None) as uow:
        users = await UserRepository(uow.session).add_many(
            [User(email=f"BULK{n}@Example.com", username=f"bulk{n}") for n in range(3)]
        )
    ids = [u.id for u in users]
    assert all(isinstance(i, int) for i in ids)
    assert len(set(ids)) == 3
    async with database.reader() as session:
        stored = await UserRepository(session).get_many(ids)
    assert [u.email for u in stored if u] == [f"bulk{n}@example.com" for n in range(3)]
    assert {e.entity_id for e in await audit_entries(database)} >= {str(i) for i in ids}


async def test_relation_changes_are_audited_on_the_owning_post(
    database: Database, actor: User
) -> None:
    async with uow_as(database, actor) as uow:
        post = await create_post(uow)
        red, green, blue = [await create_tag(uow, name=n) for n in ("red", "green", "blue")]
    async with uow_as(database, actor) as uow:
        await TagRepository(uow.session).set_post_tags(post.id, [red.id, green.id])
    async with uow_as(database, actor) as uow:
        await TagRepository(uow.session).set_post_tags(post.id, [green.id, blue.id])

    async with database.reader() as session:
        tags = (await TagRepository(session).tags_by_post([post.id]))[post.id]
    assert [t.name for t in tags] == ["blue", "green"]
    links = [e for e in await audit_entries(database, post.id) if e.entity_type == "post_tags"]
    changes = sorted((e.action, e.changes["tag_id"][0] or e.changes["tag_id"][1]) for e in links)
    assert changes == sorted(
        [("create", str(red.id)), ("create", str(green.id)),
         ("delete", str(red.id)), ("create", str(blue.id))]
    )  # fmt: skip
    assert all(e.actor_id == actor.id for e in links)


async def test_a_failed_write_leaves_no_row_and_no_audit_entry(
    database: Database, actor: User
) -> None:
    async with uow_as(database, actor) as uow:
        await create_tag(uow, name="unique")
    before = len(await audit_entries(database))

    with pytest.raises(AlreadyExistsError):
        async with uow_as(database, actor) as uow:
            await create_post(uow, slug="first-of-two")  # succeeds on its own...
            await create_tag(uow, name="UNIQUE")  # ...but this fails, so nothing lands

    assert len(await audit_entries(database)) == before
    async with database.reader() as session:
        assert await PostRepository(session).find_by_slug("first-of-two") is None


async def test_an_exception_in_the_block_rolls_everything_back(
    database: Database, actor: User
) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with uow_as(database, actor) as uow:
            await create_post(uow, slug="never")
            raise RuntimeError("boom")
    async with database.reader() as session:
        assert await PostRepository(session).find_by_slug("never") is None
        assert await session.scalar(select(func.count()).select_from(AuditLog)) == len(
            await audit_entries(database)
        )


async def test_secrets_are_never_written_to_the_audit_log(database: Database) -> None:
    async with uow_as(database, None) as uow:
        user = await create_user(uow, password_hash="$argon2id$secret-hash")
        token = await ApiTokenRepository(uow.session).add(
            ApiToken(user_id=user.id, name="ci", token_hash="f" * 64, prefix="aq_abcd")
        )
    async with uow_as(database, user) as uow:
        users = UserRepository(uow.session)
        await users.update(await users.get_or_raise(user.id), {"password_hash": "$argon2id$new"})

    entries = [*await audit_entries(database, user.id), *await audit_entries(database, token.id)]
    text = repr([e.changes for e in entries])
    assert "secret-hash" not in text
    assert "new" not in text
    assert "f" * 64 not in text
    assert entries[1].changes == {"password_hash": ["[redacted]", "[redacted]"]}


async def test_bookkeeping_only_changes_make_no_audit_entry(database: Database) -> None:
    async with uow_as(database, None) as uow:
        user = await create_user(uow)
        token = await ApiTokenRepository(uow.session).add(
            ApiToken(user_id=user.id, name="ci", token_hash="e" * 64, prefix="aq_efgh")
        )
    async with uow_as(database, user) as uow:
        tokens = ApiTokenRepository(uow.session)
        await tokens.update(await tokens.get_or_raise(token.id), {"last_used_at": token.created_at})
    assert [e.action for e in await audit_entries(database, token.id)] == ["create"]


async def test_the_system_actor_stamps_null(database: Database) -> None:
    async with uow_as(database, None) as uow:
        tag = await create_tag(uow)
    assert (tag.created_by_id, tag.updated_by_id) == (None, None)
    [entry] = await audit_entries(database, tag.id)
    assert entry.actor_id is None


async def test_stamps_come_from_the_actor_never_from_the_caller(
    database: Database, actor: User
) -> None:
    async with uow_as(database, actor) as uow:
        tag = await TagRepository(uow.session).add(
            Tag(name="forged", created_by_id=None, updated_by_id=None)
        )
    assert tag.created_by_id == actor.id


async def test_read_sessions_refuse_to_write(database: Database) -> None:
    async with database.reader() as session:
        session.add(Post(title="sneaky", slug="sneaky", status=PostStatus.DRAFT))
        with pytest.raises(RuntimeError, match="read sessions cannot write"):
            await session.flush()
