"""Bookmarks: a user's own marks on posts; hidden from all others and while the post is."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import ColumnElement, and_, exists, false

from domain import posts
from domain.rules import bounded_text
from persistence.models import Post, User
from persistence.models.bookmark import Bookmark
from persistence.repositories.post import PostRepository
from persistence.repository import repository_for
from persistence.unit_of_work import UnitOfWork

MAX_NOTE = 1_000


def visible_to(viewer: User | None) -> ColumnElement[bool]:
    if viewer is None:
        return false()
    post = exists().where(Post.id == Bookmark.post_id, Post.deleted_at.is_(None))
    return and_(Bookmark.created_by_id == viewer.id, post.where(posts.visible_to(viewer)))


restorable_by = visible_to


def valid_note(value: str | None) -> str | None:
    note = bounded_text(value or "", "note", min_length=0, max_length=MAX_NOTE)
    return note or None


async def editable(
    uow: UnitOfWork, actor: User, key: UUID, *, include_deleted: bool = False
) -> Bookmark:
    return await repository_for(Bookmark)(uow.session).get_or_raise(
        key, visible_to(actor), for_update=True, include_deleted=include_deleted
    )


async def create_bookmark(
    uow: UnitOfWork, actor: User, *, post_id: UUID, note: str | None
) -> Bookmark:
    post = await PostRepository(uow.session).get_or_raise(post_id, posts.visible_to(actor))
    bookmark = Bookmark(post_id=post.id, note=valid_note(note))
    return await repository_for(Bookmark)(uow.session).add(bookmark)


async def update_bookmark(
    uow: UnitOfWork, actor: User, key: UUID, *, note: str | None, expected_version: int | None
) -> Bookmark:
    bookmark = await editable(uow, actor, key)
    return await repository_for(Bookmark)(uow.session).update(
        bookmark, {"note": valid_note(note)}, expected_version=expected_version
    )
