"""Keyset pages: no duplicates and no gaps, forwards and backwards, with ties."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

import pytest

from persistence.audit import AuditContext
from persistence.engine import Database
from persistence.errors import InvalidCursorError, ValidationError
from persistence.models import Comment, Post, Tag
from persistence.pagination import PageRequest, SortKey, asc, desc
from persistence.repositories.comment import CommentRepository
from persistence.repositories.post import PostRepository
from persistence.repositories.tag import TagRepository
from persistence.unit_of_work import UnitOfWork
from tests.factories.post import create_comment, create_post
from tests.factories.tag import create_tag
from tests.support.statements import count_statements

# Four distinct colors over 23 tags: most rows tie on the sort key.
COLORS = ["#000000", "#111111", "#222222", "#333333"]


@pytest.fixture
async def tags(database: Database) -> list[Tag]:
    async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
        return [await create_tag(uow, color=COLORS[n % 4]) for n in range(23)]


async def walk(
    database: Database, order: Sequence[SortKey], size: int, *, backwards: bool = False
) -> list[UUID]:
    """Every row, page by page, following the cursors to the end."""
    seen: list[UUID] = []
    cursor = None
    async with database.reader() as session:
        tags = TagRepository(session)
        while True:
            request = (
                PageRequest(last=size, before=cursor)
                if backwards
                else PageRequest(first=size, after=cursor)
            )
            page = await tags.page(request, order_by=order)
            assert len(page.items) <= size
            ids = [t.id for t in page.items]
            seen = ids + seen if backwards else seen + ids
            more = page.has_previous_page if backwards else page.has_next_page
            if not more:
                return seen
            cursor = page.start_cursor if backwards else page.end_cursor


def expected(tags: list[Tag], descending: bool) -> list[UUID]:
    return [t.id for t in sorted(tags, key=lambda t: (t.color, t.id), reverse=descending)]


@pytest.mark.parametrize("size", [1, 4, 7, 23, 100])
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("backwards", [False, True])
async def test_pages_cover_every_row_once_in_order(
    database: Database, tags: list[Tag], size: int, descending: bool, backwards: bool
) -> None:
    order = [SortKey(Tag.color, descending=descending)]
    assert await walk(database, order, size, backwards=backwards) == expected(tags, descending)


async def test_mixed_directions_page_correctly(database: Database, tags: list[Tag]) -> None:
    order = [desc(Tag.color), asc(Tag.id)]
    want = [t.id for t in sorted(tags, key=lambda t: (t.color, t.id.int * -1), reverse=True)]
    assert await walk(database, order, 5) == want
    assert await walk(database, order, 5, backwards=True) == want


async def test_rows_added_between_pages_cause_no_duplicates(
    database: Database, tags: list[Tag]
) -> None:
    order = [asc(Tag.color)]
    async with database.reader() as session:
        first = await TagRepository(session).page(PageRequest(first=10), order_by=order)
    async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
        await create_tag(uow, color="#000000")  # sorts before the cursor
    async with database.reader() as session:
        second = await TagRepository(session).page(
            PageRequest(first=100, after=first.end_cursor), order_by=order
        )
    assert not {t.id for t in first.items} & {t.id for t in second.items}
    assert len(first.items) + len(second.items) == 23


async def test_page_info_and_total_count(database: Database, tags: list[Tag]) -> None:
    async with database.reader() as session:
        repo = TagRepository(session)
        first = await repo.page(PageRequest(first=20), with_total=True)
        assert (first.has_next_page, first.has_previous_page, first.total_count) == (
            True,
            False,
            23,
        )
        rest = await repo.page(PageRequest(first=20, after=first.end_cursor))
        assert (len(rest.items), rest.has_next_page, rest.has_previous_page) == (3, False, True)
        assert rest.total_count is None  # counted only when asked
        empty = await repo.page(PageRequest(first=0), with_total=True)
        assert (empty.items, empty.has_next_page, empty.total_count) == ([], True, 23)


def _forge(signature: str, values: list[object]) -> str:
    return base64.urlsafe_b64encode(json.dumps([signature, values]).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(b"not json").decode(),
        _forge("name:a,id:a", ["x", "0" * 32]),  # made for another ordering
        _forge("color:a,id:a", ["#000000"]),  # too few values
        _forge("color:a,id:a", ["#000000", "not-a-uuid"]),
        _forge("color:a,id:a", [7, "0" * 32]),  # wrong type
        "",
    ],
)
async def test_forged_or_stale_cursors_are_clean_input_errors(
    database: Database, cursor: str
) -> None:
    async with database.reader() as session:
        with pytest.raises(InvalidCursorError) as caught:
            await TagRepository(session).page(
                PageRequest(first=5, after=cursor), order_by=[asc(Tag.color)]
            )
    assert caught.value.field == "after"


async def test_datetime_cursors_must_be_timezone_aware(database: Database) -> None:
    naive = _forge("created_at:d,id:d", [datetime(2026, 1, 1).isoformat(), "0" * 32])
    aware = _forge("created_at:d,id:d", [datetime(2026, 1, 1, tzinfo=UTC).isoformat(), "0" * 32])
    async with database.reader() as session:
        posts = PostRepository(session)
        with pytest.raises(InvalidCursorError):
            await posts.page(PageRequest(first=1, after=naive))
        assert (await posts.page(PageRequest(first=1, after=aware))).items == []


@pytest.mark.parametrize(
    "request_args", [{"first": -1}, {"first": 101}, {"last": 1000}, {"first": 1, "last": 1}]
)
def test_page_sizes_are_bounded(request_args: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        PageRequest(**request_args)  # type: ignore[arg-type]


def test_nullable_columns_cannot_order_a_keyset() -> None:
    with pytest.raises(ValueError, match="nullable"):
        PostRepository.ordering(PostRepository.__new__(PostRepository), [asc(Post.published_at)])


async def test_each_parent_gets_its_own_first_page_in_one_statement(database: Database) -> None:
    async with UnitOfWork(database, AuditContext(actor_id=None)) as uow:
        posts = [await create_post(uow) for _ in range(3)]
        comments = {
            post.id: [await create_comment(uow, post, body=f"{n}") for n in range(count)]
            for post, count in zip(posts, [5, 2, 0], strict=True)
        }
    async with database.reader() as session:
        repo = CommentRepository(session)
        with count_statements(database) as statements:
            pages = await repo.pages_by_parent(Comment.post_id, [p.id for p in posts], first=3)
        assert len(statements) == 1
        for post in posts:
            want = [c.id for c in comments[post.id]]
            assert [c.id for c in pages[post.id].items] == want[:3]
            assert pages[post.id].has_next_page == (len(want) > 3)

        first_post = posts[0].id
        after = pages[first_post].end_cursor
        rest = await repo.pages_by_parent(Comment.post_id, [first_post], first=3, after=after)
    assert [c.id for c in rest[first_post].items] == [c.id for c in comments[first_post][3:]]
    assert not rest[first_post].has_next_page
