"""BaseRepository reads and writes, soft delete, versions and error translation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidFilterError,
    InvalidReferenceError,
    MultipleResultsFoundError,
    NotFoundError,
    ValidationError,
)
from persistence.models import Comment, FeatureFlag, FlagOverride, Post, PostStatus, Tag
from persistence.pagination import PageRequest, asc
from persistence.repositories.comment import CommentRepository
from persistence.repositories.feature_flag import FeatureFlagRepository, FlagOverrideRepository
from persistence.repositories.post import PostRepository
from persistence.repositories.tag import TagRepository
from persistence.unit_of_work import UnitOfWork
from tests.factories.post import create_comment, create_post
from tests.factories.tag import create_tag
from tests.factories.user import create_user


def uow(database: Database) -> UnitOfWork:
    return UnitOfWork(database, AuditContext(actor_id=None))


async def test_get_many_returns_rows_in_key_order_with_gaps(database: Database) -> None:
    async with uow(database) as u:
        a, b = await create_tag(u), await create_tag(u)
    missing = UUID(int=1)
    async with database.reader() as session:
        found = await TagRepository(session).get_many([b.id, missing, a.id, b.id])
    assert [t.id if t else None for t in found] == [b.id, None, a.id, b.id]


async def test_list_filters_orders_and_rejects_unknown_fields(database: Database) -> None:
    async with uow(database) as u:
        for name in ("b-list", "a-list", "c-list"):
            await create_tag(u, name=name)
    async with database.reader() as session:
        tags = TagRepository(session)
        names = [t.name for t in await tags.list(Tag.name.like("%-list"))]
        assert names == ["a-list", "b-list", "c-list"]
        assert [t.name for t in await tags.list(name=["c-list", "a-list"])] == ["a-list", "c-list"]
        assert await tags.count(Tag.name.like("%-list")) == 3
        assert await tags.exists(name="b-list")
        assert not await tags.exists(name="z-list")
        with pytest.raises(InvalidFilterError) as caught:
            await tags.list(colour="red")
        assert caught.value.field == "colour"


async def test_get_one_by_refuses_ambiguity(database: Database) -> None:
    async with uow(database) as u:
        await create_tag(u, color="#000001")
        await create_tag(u, color="#000001")
    async with database.reader() as session:
        with pytest.raises(MultipleResultsFoundError):
            await TagRepository(session).get_one_by(color="#000001")


async def test_soft_deleted_rows_are_invisible_to_every_read_until_restored(
    database: Database,
) -> None:
    async with uow(database) as u:
        post = await create_post(u)
        kept = await create_comment(u, post)
        gone = await create_comment(u, post)
    async with uow(database) as u:
        comments = CommentRepository(u.session)
        await comments.soft_delete(await comments.get_or_raise(gone.id))

    async with database.reader() as session:
        comments = CommentRepository(session)
        assert await comments.get(gone.id) is None
        with pytest.raises(NotFoundError):
            await comments.get_or_raise(gone.id)
        assert [c and c.id for c in await comments.get_many([gone.id, kept.id])] == [None, kept.id]
        assert [c.id for c in await comments.list(post_id=post.id)] == [kept.id]
        assert await comments.count(post_id=post.id) == 1
        assert not await comments.exists(id=gone.id)
        page = await comments.page(PageRequest(first=10), post_id=post.id, with_total=True)
        assert ([c.id for c in page.items], page.total_count) == ([kept.id], 1)
        per_post = await comments.pages_by_parent(Comment.post_id, [post.id], first=10)
        assert [c.id for c in per_post[post.id].items] == [kept.id]
        assert (await comments.get(gone.id, include_deleted=True)) is not None

    async with uow(database) as u:
        comments = CommentRepository(u.session)
        await comments.restore(await comments.get_or_raise(gone.id, include_deleted=True))
    async with database.reader() as session:
        assert await CommentRepository(session).count(post_id=post.id) == 2


async def test_a_stale_expected_version_is_a_conflict_naming_the_current_version(
    database: Database,
) -> None:
    async with uow(database) as u:
        post = await create_post(u)
    async with uow(database) as u:
        posts = PostRepository(u.session)
        await posts.update(await posts.get_or_raise(post.id), {"title": "v2"})

    for write in ("update", "soft_delete", "delete"):
        with pytest.raises(ConflictError) as caught:
            async with uow(database) as u:
                posts = PostRepository(u.session)
                current = await posts.get_or_raise(post.id, for_update=True)
                if write == "update":
                    await posts.update(current, {"title": "v3"}, expected_version=1)
                else:
                    await getattr(posts, write)(current, expected_version=1)
        assert caught.value.current_version == 2
    async with database.reader() as session:
        assert (await PostRepository(session).get_or_raise(post.id)).title == "v2"


async def test_a_write_based_on_a_stale_read_is_refused_by_the_version_counter(
    database: Database,
) -> None:
    async with uow(database) as u:
        post = await create_post(u)
    async with database.reader() as session:
        stale = await PostRepository(session).get_or_raise(post.id)
    async with uow(database) as u:
        posts = PostRepository(u.session)
        await posts.update(await posts.get_or_raise(post.id), {"title": "moved on"})
    with pytest.raises(ConflictError):
        async with uow(database) as u:
            merged = await u.session.merge(stale, load=False)
            await PostRepository(u.session).update(merged, {"title": "lost update"})


async def test_protected_columns_cannot_be_updated(database: Database) -> None:
    async with uow(database) as u:
        tag = await create_tag(u)
        for column in ("created_by_id", "version", "id", "nope"):
            with pytest.raises(ValidationError):
                await TagRepository(u.session).update(tag, {column: 1})


@pytest.mark.parametrize(
    ("make_duplicate", "field"),
    [
        (lambda: Tag(name="DUPLICATE"), "name"),  # unique expression index, other case
        (lambda: Post(title="t", slug="taken"), "slug"),  # partial unique index
        (lambda: FeatureFlag(key="dup.flag", name="x"), "key"),  # unique constraint
    ],
)
async def test_unique_violations_become_already_exists_naming_the_field(
    database: Database, make_duplicate: object, field: str
) -> None:
    async with uow(database) as u:
        await create_tag(u, name="duplicate")
        await create_post(u, slug="taken")
        await FeatureFlagRepository(u.session).add(FeatureFlag(key="dup.flag", name="x"))
    with pytest.raises(AlreadyExistsError) as caught:
        async with uow(database) as u:
            u.session.add(make_duplicate())  # type: ignore[operator]
    assert caught.value.field == field
    assert "uq_" not in caught.value.message
    assert "INSERT" not in caught.value.message


async def test_unique_violations_over_two_columns_name_the_field(database: Database) -> None:
    async with uow(database) as u:
        user = await create_user(u)
        flag = await FeatureFlagRepository(u.session).add(FeatureFlag(key="pair", name="p"))
        await FlagOverrideRepository(u.session).add(
            FlagOverride(flag_id=flag.id, user_id=user.id, enabled=True)
        )
    with pytest.raises(AlreadyExistsError) as caught:
        async with uow(database) as u:
            u.session.add(FlagOverride(flag_id=flag.id, user_id=user.id, enabled=False))
    assert caught.value.field == "flag_id"


async def test_a_deleted_posts_slug_is_free_again(database: Database) -> None:
    async with uow(database) as u:
        post = await create_post(u, slug="reused")
        await PostRepository(u.session).soft_delete(post)
        again = await create_post(u, slug="reused")
    assert again.id != post.id


@pytest.mark.parametrize("field", ["flag_id", "user_id"])
async def test_foreign_key_violations_name_the_field(database: Database, field: str) -> None:
    async with uow(database) as u:
        user = await create_user(u)
        flag = await FeatureFlagRepository(u.session).add(FeatureFlag(key=f"fk.{field}", name="f"))
    dangling = {"flag_id": UUID(int=42), "user_id": 987_654}
    values = {"flag_id": flag.id, "user_id": user.id, field: dangling[field]}
    with pytest.raises(InvalidReferenceError) as caught:
        async with uow(database) as u:
            await FlagOverrideRepository(u.session).add(FlagOverride(enabled=True, **values))
    assert caught.value.field == field


async def test_foreign_key_violations_on_update_name_the_field(database: Database) -> None:
    async with uow(database) as u:
        post = await create_post(u)
        comment = await create_comment(u, post)
    with pytest.raises(InvalidReferenceError) as caught:
        async with uow(database) as u:
            comments = CommentRepository(u.session)
            await comments.update(await comments.get_or_raise(comment.id), {"post_id": UUID(int=9)})
    assert caught.value.field == "post_id"


async def test_foreign_key_violations_in_bulk_inserts_name_the_field(database: Database) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        async with uow(database) as u:
            await CommentRepository(u.session).add_many([Comment(post_id=UUID(int=7), body="x")])
    assert caught.value.field == "post_id"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"slug": "nul\x00byte"}, "slug"),
        ({"status": PostStatus.PUBLISHED}, "published_at"),
    ],
)
async def test_check_violations_become_validation_errors_naming_the_field(
    database: Database, values: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        async with uow(database) as u:
            await create_post(u, **values)
    assert caught.value.field == field


async def test_tag_colors_and_flag_keys_are_checked_by_the_database(database: Database) -> None:
    for make in (lambda: Tag(name="c", color="#12345g"), lambda: FeatureFlag(key="9bad", name="k")):
        with pytest.raises(ValidationError):
            async with uow(database) as u:
                u.session.add(make())
    for key in ("ok", "a.b-c_d9"):
        async with uow(database) as u:
            await FeatureFlagRepository(u.session).add(FeatureFlag(key=key, name="k"))


async def test_datetimes_come_back_aware_in_utc(database: Database) -> None:
    published = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC) + timedelta(hours=0)
    async with uow(database) as u:
        post = await create_post(u, status=PostStatus.PUBLISHED, published_at=published)
    async with database.reader() as session:
        stored = await PostRepository(session).get_or_raise(post.id)
    assert stored.published_at == published
    assert stored.published_at is not None
    assert stored.published_at.utcoffset() == timedelta(0)
    assert stored.status is PostStatus.PUBLISHED


async def test_user_ids_order_tags_by_creation(database: Database) -> None:
    async with uow(database) as u:
        created = [await create_tag(u, name=f"order-{n}") for n in range(20)]
    async with database.reader() as session:
        ordered = await TagRepository(session).list(
            Tag.name.like("order-%"), order_by=[asc(Tag.id)]
        )
    assert [t.id for t in ordered] == [t.id for t in created]
