"""A read session's entities are snapshots (``persistence.snapshots``): the values the
ORM would have loaded, without its state until something asks for it, and then the
detached entity the ORM would have left."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from sqlalchemy.orm import configure_mappers

from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.models import Post, Tag
from persistence.pagination import PageRequest
from persistence.repositories.post import PostRepository
from persistence.repositories.tag import TagRepository
from persistence.snapshots import answering
from persistence.unit_of_work import UnitOfWork
from tests.factories.post import create_post
from tests.factories.tag import create_tag


def uow(database: Database) -> UnitOfWork:
    return UnitOfWork(database, AuditContext(actor_id=None))


def columns(entity: object) -> dict[str, object]:
    keys = [attribute.key for attribute in inspect(Post).column_attrs]
    return {key: getattr(entity, key) for key in keys}


async def test_a_snapshot_holds_what_the_orm_loads_and_no_state_until_asked(
    database: Database,
) -> None:
    async with uow(database) as u:
        post = await create_post(u, title="Snapshot")
    async with uow(database) as u:
        loaded = await PostRepository(u.session).get_or_raise(post.id)
        assert not answering(u.session)
        assert "_sa_instance_state" in loaded.__dict__
    async with database.reader() as session:
        assert answering(session)
        [snapshot] = await PostRepository(session).list(Post.id == post.id)
    assert type(snapshot) is Post
    assert "_sa_instance_state" not in snapshot.__dict__
    assert columns(snapshot) == columns(loaded)

    state = inspect(snapshot)
    assert state.detached
    assert state.key == inspect(loaded).key
    assert not state.modified
    assert snapshot.__dict__["_sa_instance_state"] is state


async def test_equal_rows_of_one_result_are_one_object(database: Database) -> None:
    async with uow(database) as u:
        shared = await create_tag(u)
        first, second = await create_post(u), await create_post(u)
        tags = TagRepository(u.session)
        await tags.set_post_tags(first.id, [shared.id])
        await tags.set_post_tags(second.id, [shared.id])
    async with database.reader() as session:
        found = await TagRepository(session).tags_by_post([first.id, second.id])
    assert [t.name for t in found[first.id]] == [shared.name]
    assert found[first.id][0] is found[second.id][0]


async def test_a_snapshot_merged_into_a_unit_of_work_is_written_as_a_loaded_entity(
    database: Database,
) -> None:
    async with uow(database) as u:
        post = await create_post(u)
    async with database.reader() as session:
        page = await PostRepository(session).page(PageRequest(first=100))
    [snapshot] = [item for item in page.items if item.id == post.id]
    async with uow(database) as u:
        merged = await u.session.merge(snapshot, load=False)
        await PostRepository(u.session).update(merged, {"title": "From a snapshot"})
    async with database.reader() as session:
        reread = await PostRepository(session).get_or_raise(post.id)
    assert (reread.title, reread.version) == ("From a snapshot", post.version + 1)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_constructed_entities_keep_their_transient_state(backend: str) -> None:
    configure_mappers()
    tag = Tag(name="new")
    assert inspect(tag).transient
    assert inspect(tag).key is None
    with pytest.raises(AttributeError, match="'Tag' object has no attribute 'colour'"):
        _ = tag.colour  # type: ignore[attr-defined]
