"""Comments: on posts the writer can see, changed by their author or a superuser."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import ColumnElement, and_, exists, false, true

from domain import posts
from domain.rules import bounded_text, require_owner
from persistence.models import Comment, Post, User
from persistence.repositories.comment import CommentRepository
from persistence.repositories.post import PostRepository
from persistence.unit_of_work import UnitOfWork

MAX_BODY = 10_000


def visible_to(viewer: User | None) -> ColumnElement[bool]:
    """Comments on live posts the viewer may see."""
    return exists().where(
        Post.id == Comment.post_id, Post.deleted_at.is_(None), posts.visible_to(viewer)
    )


def restorable_by(viewer: User | None) -> ColumnElement[bool]:
    """Deleted comments the viewer may bring back: their own on posts they see; every
    one on a visible post for superusers."""
    if viewer is None:
        return false()
    mine = true() if viewer.is_superuser else Comment.created_by_id == viewer.id
    return and_(mine, visible_to(viewer))


def valid_body(value: str) -> str:
    return bounded_text(value, "body", max_length=MAX_BODY)


async def editable(
    uow: UnitOfWork, actor: User, comment_id: UUID, *, include_deleted: bool = False
) -> Comment:
    """The comment, locked, if its post is visible to the actor and the actor may
    change it (its author or a superuser)."""
    comment = await CommentRepository(uow.session).get_or_raise(
        comment_id, for_update=True, include_deleted=include_deleted
    )
    await PostRepository(uow.session).get_or_raise(comment.post_id, posts.visible_to(actor))
    require_owner(actor, comment)
    return comment


async def create_comment(uow: UnitOfWork, actor: User, *, post_id: UUID, body: str) -> Comment:
    post = await PostRepository(uow.session).get_or_raise(post_id, posts.visible_to(actor))
    return await CommentRepository(uow.session).add(Comment(post_id=post.id, body=valid_body(body)))


async def update_comment(
    uow: UnitOfWork, actor: User, comment_id: UUID, *, body: str,
    expected_version: int | None = None,
) -> Comment:  # fmt: skip
    comment = await editable(uow, actor, comment_id)
    return await CommentRepository(uow.session).update(
        comment, {"body": valid_body(body)}, expected_version=expected_version
    )
