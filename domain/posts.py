"""Posts: who sees them, who changes them, and what their title, body, slug and tags
must be."""

from __future__ import annotations

import re
from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import ColumnElement, false, or_, true

from domain.rules import bounded_text, require_owner
from persistence.base import utcnow
from persistence.errors import NotFoundError, ValidationError
from persistence.models import Post, PostStatus, User
from persistence.repositories.post import PostRepository
from persistence.repositories.tag import TagRepository
from persistence.unit_of_work import UnitOfWork

MAX_BODY = 100_000
MAX_TAGS = 20
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# Built once: anonymous reads, the most frequent, all filter by it.
_PUBLISHED: ColumnElement[bool] = Post.status == PostStatus.PUBLISHED


def visible_to(viewer: User | None) -> ColumnElement[bool]:
    """Published posts for everyone; a viewer's own drafts and archived posts for them;
    everything for superusers."""
    if viewer is not None and viewer.is_superuser:
        return true()
    if viewer is None:
        return _PUBLISHED
    return or_(_PUBLISHED, Post.created_by_id == viewer.id)


def restorable_by(viewer: User | None) -> ColumnElement[bool]:
    """Deleted posts the viewer may bring back: their own; every one for superusers."""
    if viewer is None:
        return false()
    return true() if viewer.is_superuser else Post.created_by_id == viewer.id


def valid_title(value: str) -> str:
    return bounded_text(value, "title", max_length=200)


def valid_body(value: str) -> str:
    return bounded_text(value, "body", max_length=MAX_BODY, min_length=0)


def valid_slug(value: str) -> str:
    slug = value.strip().lower()
    if not _SLUG.fullmatch(slug) or len(slug) > 200:
        raise ValidationError("slug", "slug must be lower-case words joined by hyphens.")
    return slug


def slug_from(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:200].strip("-")
    if not slug:
        raise ValidationError("slug", "Give a slug: the title has no letters or digits.")
    return slug


async def editable(
    uow: UnitOfWork, actor: User, post_id: UUID, *, include_deleted: bool = False
) -> Post:
    """The post, locked for a change, if the actor may see it (else NotFound) and
    change it (else Forbidden): its author or a superuser."""
    post = await PostRepository(uow.session).get_or_raise(
        post_id, visible_to(actor), for_update=True, include_deleted=include_deleted
    )
    require_owner(actor, post)
    return post


async def create_post(
    uow: UnitOfWork,
    actor: User,
    *,
    title: str,
    body: str = "",
    slug: str | None = None,
    tag_ids: Sequence[UUID] = (),
) -> Post:
    """A draft by the actor; its slug is made from the title unless given."""
    title = valid_title(title)
    post = await PostRepository(uow.session).add(
        Post(
            title=title,
            body=valid_body(body),
            slug=valid_slug(slug) if slug is not None else slug_from(title),
        )
    )
    if tag_ids:
        await _set_tags(uow, post, tag_ids)
    return post


async def update_post(
    uow: UnitOfWork,
    actor: User,
    post_id: UUID,
    *,
    title: str | None = None,
    body: str | None = None,
    slug: str | None = None,
    expected_version: int | None = None,
) -> Post:
    post = await editable(uow, actor, post_id)
    values: dict[str, object] = {}
    if title is not None:
        values["title"] = valid_title(title)
    if body is not None:
        values["body"] = valid_body(body)
    if slug is not None:
        values["slug"] = valid_slug(slug)
    return await PostRepository(uow.session).update(post, values, expected_version=expected_version)


async def publish_post(
    uow: UnitOfWork, actor: User, post_id: UUID, *, expected_version: int | None = None
) -> Post:
    """Visible to everyone from now on; ``published_at`` is the first publication."""
    post = await editable(uow, actor, post_id)
    values: dict[str, object] = {"status": PostStatus.PUBLISHED}
    if post.published_at is None:
        values["published_at"] = utcnow()
    return await PostRepository(uow.session).update(post, values, expected_version=expected_version)


async def set_post_tags(
    uow: UnitOfWork,
    actor: User,
    post_id: UUID,
    tag_ids: Sequence[UUID],
    *,
    expected_version: int | None = None,
) -> Post:
    """The post's tags from now on; a change of tags is a new version of the post."""
    post = await editable(uow, actor, post_id)
    posts = PostRepository(uow.session)
    posts.check_version(post, expected_version)
    if await _set_tags(uow, post, tag_ids):
        await posts.touch(post)
    return post


async def _set_tags(uow: UnitOfWork, post: Post, tag_ids: Sequence[UUID]) -> bool:
    keys = list(dict.fromkeys(tag_ids))
    if len(keys) > MAX_TAGS:
        raise ValidationError("tag_ids", f"A post has at most {MAX_TAGS} tags.")
    tags = TagRepository(uow.session)
    if None in await tags.get_many(keys):
        raise NotFoundError("tag")
    return await tags.set_post_tags(post.id, keys)
