"""Relationships are for explicit loading only: every one is ``lazy="raise"``, so no
code path (the GraphQL resolvers included, which go through loaders) can make a hidden
query by touching an attribute; ``selectinload`` loads them when Python code wants to
navigate."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import selectinload

from persistence.audit import AuditContext
from persistence.base import Base
from persistence.engine import Database
from persistence.models import Comment, FeatureFlag, FlagOverride, Post, User
from persistence.repositories.comment import CommentRepository
from persistence.repositories.tag import TagRepository
from persistence.unit_of_work import UnitOfWork
from tests.factories.post import create_comment, create_post
from tests.factories.tag import create_tag
from tests.factories.user import create_user

RELATIONSHIPS = sorted(
    (mapper.class_.__name__, relationship.key, relationship)
    for mapper in Base.registry.mappers
    for relationship in mapper.relationships
)


def test_every_relationship_raises_instead_of_loading_lazily() -> None:
    assert {(model, key) for model, key, _ in RELATIONSHIPS} >= {
        ("Post", "created_by"), ("Post", "updated_by"), ("Post", "comments"),
        ("Post", "tags"), ("Comment", "post"), ("FeatureFlag", "overrides"),
        ("User", "created_by"),
    }  # fmt: skip
    for model, key, relationship in RELATIONSHIPS:
        assert relationship.lazy == "raise", f"{model}.{key}"
        assert relationship.viewonly, f"{model}.{key}: writes set the foreign key"


async def test_navigating_is_explicit(database: Database) -> None:
    async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
        author = await create_user(uow)
    async with UnitOfWork(database, AuditContext(actor_id=author.id)) as uow:
        post = await create_post(uow)
        kept, gone = await create_comment(uow, post), await create_comment(uow, post)
        await CommentRepository(uow.session).soft_delete(gone)
        tags = [await create_tag(uow, name=name) for name in ("zeta", "alpha")]
        await TagRepository(uow.session).set_post_tags(post.id, [t.id for t in tags])
        flag = FeatureFlag(key=f"flag-{post.id.hex[:8]}", name="Flag")
        uow.session.add(flag)
        await uow.session.flush()
        uow.session.add(FlagOverride(flag_id=flag.id, user_id=author.id, enabled=True))

    async with database.reader() as session:
        plain = await session.get(Post, post.id)
        assert plain is not None
        for key in ("created_by", "comments", "tags"):
            with pytest.raises(InvalidRequestError, match="lazy='raise'"):
                getattr(plain, key)
        session.expunge_all()

        loaded = await session.scalar(
            select(Post)
            .where(Post.id == post.id)
            .options(
                selectinload(Post.created_by),
                selectinload(Post.comments).selectinload(Comment.post),
                selectinload(Post.tags),
            )
        )
        overridden = await session.scalar(
            select(FeatureFlag).where(FeatureFlag.id == flag.id).options(
                selectinload(FeatureFlag.overrides).selectinload(FlagOverride.flag)
            )
        )  # fmt: skip

    assert loaded is not None
    assert isinstance(loaded.created_by, User)
    assert loaded.created_by.id == author.id
    assert [c.id for c in loaded.comments] == [kept.id]  # live comments only
    assert loaded.comments[0].post is loaded
    assert [t.name for t in loaded.tags] == ["alpha", "zeta"]
    assert overridden is not None
    assert [(o.user_id, o.enabled, o.flag is overridden) for o in overridden.overrides] == [
        (author.id, True, True)
    ]
