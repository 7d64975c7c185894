"""The rules of bookmarks, without GraphQL: notes are trimmed and bounded, a bookmark
is its owner's alone, and only while its post is visible to them."""

from __future__ import annotations

import pytest

from domain import bookmarks, lifecycle, posts
from persistence.engine import Database
from persistence.errors import AlreadyExistsError, NotFoundError, ValidationError
from persistence.models import Post, User
from persistence.models.bookmark import Bookmark
from tests.domain.conftest import as_


async def published(database: Database, author: User) -> Post:
    async with as_(database, author) as uow:
        post = await posts.create_post(uow, author, title="Worth keeping")
        return await posts.publish_post(uow, author, post.id)


async def mark(database: Database, who: User, post: Post, note: str | None = None) -> Bookmark:
    async with as_(database, who) as uow:
        return await bookmarks.create_bookmark(uow, who, post_id=post.id, note=note)


async def test_a_note_is_trimmed_blank_is_none_and_bounded(
    database: Database, author: User, stranger: User
) -> None:
    post = await published(database, author)

    made = await mark(database, stranger, post, "  later  ")
    async with as_(database, stranger) as uow:
        cleared = await bookmarks.update_bookmark(
            uow, stranger, made.id, note=" ", expected_version=None
        )
    with pytest.raises(ValidationError) as refused:
        await mark(database, author, post, "x" * (bookmarks.MAX_NOTE + 1))

    assert (made.note, cleared.note) == ("later", None)
    assert refused.value.field == "note"


async def test_a_bookmark_is_its_owner_s_alone(
    database: Database, author: User, stranger: User, root: User
) -> None:
    post = await published(database, author)
    made = await mark(database, stranger, post)

    for other in (author, root):
        with pytest.raises(NotFoundError):
            async with as_(database, other) as uow:
                await lifecycle.delete(uow, other, bookmarks, made.id)
    with pytest.raises(AlreadyExistsError) as duplicate:
        await mark(database, stranger, post)

    assert duplicate.value.field == "post_id"


async def test_no_bookmark_on_a_post_one_cannot_see(
    database: Database, author: User, stranger: User
) -> None:
    async with as_(database, author) as uow:
        draft = await posts.create_post(uow, author, title="Not yet")

    with pytest.raises(NotFoundError):
        await mark(database, stranger, draft)
