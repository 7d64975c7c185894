"""The rules of posts and comments, without GraphQL: who sees and changes them, and
what a title, slug, body and set of tags must be."""

from __future__ import annotations

import pytest

from domain import comments, posts
from persistence.engine import Database
from persistence.errors import ForbiddenError, NotFoundError, ValidationError
from persistence.models import Post, PostStatus, User
from persistence.repositories.post import PostRepository
from tests.domain.conftest import as_
from tests.factories.tag import create_tag


async def write(database: Database, author: User, **values: object) -> Post:
    async with as_(database, author) as uow:
        return await posts.create_post(uow, author, **{"title": "Hello, World!", **values})  # type: ignore[arg-type]


async def test_a_post_is_a_draft_with_a_slug_from_its_title(
    database: Database, author: User
) -> None:
    post = await write(database, author, title="  Hello, World!  ")
    assert (post.title, post.slug, post.status) == (
        "Hello, World!",
        "hello-world",
        PostStatus.DRAFT,
    )
    with pytest.raises(ValidationError, match="has no letters or digits") as refused:
        await write(database, author, title="!!!")
    assert refused.value.field == "slug"
    for slug in ("Not A Slug", "a--b", "-a"):
        with pytest.raises(ValidationError) as refused:
            await write(database, author, slug=slug)
        assert refused.value.field == "slug"


async def test_only_its_author_and_superusers_change_a_post(
    database: Database, author: User, stranger: User, root: User
) -> None:
    post = await write(database, author)
    async with as_(database, root) as uow:
        await posts.publish_post(uow, root, post.id)  # the stranger may see it now
    with pytest.raises(ForbiddenError):
        async with as_(database, stranger) as uow:
            await posts.update_post(uow, stranger, post.id, title="Mine")
    async with as_(database, author) as uow:
        updated = await posts.update_post(uow, author, post.id, title="Edited")
    assert (updated.title, updated.version) == ("Edited", 3)


async def test_a_draft_is_not_found_by_others(
    database: Database, author: User, stranger: User
) -> None:
    post = await write(database, author)
    with pytest.raises(NotFoundError):
        async with as_(database, stranger) as uow:
            await posts.update_post(uow, stranger, post.id, title="Mine")
    async with database.reader() as session:
        seen = await PostRepository(session).list(posts.visible_to(stranger))
        assert seen == []
        assert await PostRepository(session).list(posts.visible_to(None)) == []


async def test_publishing_sets_published_at_once(database: Database, author: User) -> None:
    post = await write(database, author)
    async with as_(database, author) as uow:
        first = (await posts.publish_post(uow, author, post.id)).published_at
    async with as_(database, author) as uow:
        again = await posts.publish_post(uow, author, post.id)
    assert first is not None
    assert again.published_at == first


async def test_a_post_has_at_most_twenty_existing_tags(
    database: Database, author: User, root: User
) -> None:
    async with as_(database, root) as uow:
        tags = [await create_tag(uow) for _ in range(21)]
    with pytest.raises(ValidationError, match="at most 20 tags"):
        await write(database, author, tag_ids=[t.id for t in tags])
    post = await write(database, author, tag_ids=[t.id for t in tags[:20]])
    with pytest.raises(NotFoundError):
        async with as_(database, author) as uow:
            await posts.set_post_tags(uow, author, post.id, [post.id])  # not a tag
    async with as_(database, author) as uow:
        tagged = await posts.set_post_tags(uow, author, post.id, [tags[0].id])
    assert tagged.version == 2  # a change of tags is a new version


async def test_comments_go_on_posts_their_writer_sees(
    database: Database, author: User, stranger: User
) -> None:
    post = await write(database, author)
    with pytest.raises(NotFoundError):
        async with as_(database, stranger) as uow:
            await comments.create_comment(uow, stranger, post_id=post.id, body="Hi")
    async with as_(database, author) as uow:
        comment = await comments.create_comment(uow, author, post_id=post.id, body=" Hi ")
    assert comment.body == "Hi"
    with pytest.raises(ValidationError):
        async with as_(database, author) as uow:
            await comments.update_comment(uow, author, comment.id, body="x" * 10_001)
